from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin

from . import services
from .models import Plan, Subscription


class BillingOverviewView(OrganizationRequiredMixin, View):
    """The organization's plan, its trial, and the catalogue to change plan from."""

    required_role = Role.ADMIN
    template_name = "billing/overview.html"

    def get(self, request):
        subscription = Subscription.objects.select_related("plan").first()
        currency = subscription.currency if subscription else request.organization.currency
        plans = Plan.objects.filter(is_public=True).prefetch_related("prices")
        return render(
            request,
            self.template_name,
            {
                "subscription": subscription,
                "currency": currency,
                "trial_days": settings.TRIAL_DAYS,
                "plans": [(plan, plan.price_for(currency), plan.price_for(currency, "yearly")) for plan in plans],
            },
        )


class ChangePlanView(OrganizationRequiredMixin, View):
    required_role = Role.OWNER

    def post(self, request):
        plan = get_object_or_404(Plan, code=request.POST.get("plan"), is_public=True)
        try:
            services.subscription_change_plan(
                organization=request.organization, plan=plan, actor=request.user, request=request
            )
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"You are now on the {plan.name} plan.")
        return redirect("billing:overview")
