"""Usage: every metered message and buyer webhook, totals for rebilling, and the organization's markup."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views import View

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from messaging import selectors
from messaging.services.metering import organization_markup_percent, usage_markup_set

from ..forms import PERIODS, MarkupForm
from .common import CampaignsPageMixin, add_errors, period_since

PAGE_SIZE = 50


class UsageView(CampaignsPageMixin, View):
    required_role = Role.ADMIN

    def render_page(self, request, form=None, status=200):
        period, since = period_since(request)
        page = Paginator(selectors.usage_records(since=since), PAGE_SIZE).get_page(request.GET.get("page"))
        markup = organization_markup_percent(request.organization.pk)
        return render(
            request,
            "campaigns/usage/list.html",
            {
                "summary": selectors.usage_summary(since=since),
                "page": page,
                "period": period,
                "periods": PERIODS,
                "markup": markup,
                "form": form or MarkupForm(initial={"markup_percent": markup}),
                "can_set_markup": request.membership.has_role(Role.OWNER),
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        if not request.membership.has_role(Role.OWNER):
            messages.error(request, "Only owners set the markup.")
            return redirect("campaigns:usage")
        form = MarkupForm(request.POST)
        if form.is_valid():
            try:
                usage_markup_set(
                    organization=request.organization,
                    markup_percent=form.cleaned_data["markup_percent"],
                    actor=request.user,
                    request=request,
                )
            except ServiceError as error:
                add_errors(form, error)
            else:
                messages.success(request, "Markup saved: sends from now on are billed with it.")
                return redirect("campaigns:usage")
        return self.render_page(request, form=form, status=400)
