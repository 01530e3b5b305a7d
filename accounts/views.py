"""Pages of the accounts app: onboarding, dashboard, invitations and the settings area. Views stay thin:
they parse input, call one service, and render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from billing.models import Plan, Subscription
from leadflow.exceptions import PermissionDeniedError, ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin
from leads.page_selectors import dashboard_lead_cards

from . import selectors, services
from .constants import Role
from .forms import (
    ApiKeyForm,
    BusinessDetailsForm,
    InvitationForm,
    OrganizationForm,
    PlanChoiceForm,
    ProfileForm,
    RoleForm,
)
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization

ONBOARDING_SESSION_KEY = "onboarding_business_details"


def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return redirect("account_login")


def form_error_from_service(form, error: ServiceError) -> None:
    """Show a service's refusal on the field it names, or on the form."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


# Onboarding -----------------------------------------------------------------------------------------------------


@method_decorator(login_required, name="dispatch")
class OnboardingDetailsView(View):
    """Step 1 of 2: the business behind the new workspace."""

    template_name = "accounts/onboarding_details.html"

    def get(self, request):
        initial = request.session.get(ONBOARDING_SESSION_KEY) or {}
        return render(request, self.template_name, {"form": BusinessDetailsForm(initial=initial), "step": 1})

    def post(self, request):
        form = BusinessDetailsForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form, "step": 1})
        request.session[ONBOARDING_SESSION_KEY] = form.to_session()
        return redirect("onboarding_plan")


@method_decorator(login_required, name="dispatch")
class OnboardingPlanView(View):
    """Step 2 of 2: choose a plan; the workspace starts on a free trial of it."""

    template_name = "accounts/onboarding_plan.html"

    def _context(self, request, form, details):
        plans = Plan.objects.filter(is_public=True).prefetch_related("prices")
        currency = details.get("currency", "USD")
        return {
            "form": form,
            "step": 2,
            "plans": [(plan, plan.price_for(currency)) for plan in plans],
            "currency": currency,
        }

    def get(self, request):
        details = request.session.get(ONBOARDING_SESSION_KEY)
        if not details:
            return redirect("onboarding")
        initial_plan = Plan.objects.filter(is_public=True).order_by("sort_order").first()
        return render(
            request, self.template_name, self._context(request, PlanChoiceForm(initial={"plan": initial_plan}), details)
        )

    def post(self, request):
        details = request.session.get(ONBOARDING_SESSION_KEY)
        if not details:
            return redirect("onboarding")
        form = PlanChoiceForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, self._context(request, form, details))
        details_form = BusinessDetailsForm(details)
        if not details_form.is_valid():
            messages.error(request, "Some business details need another look.")
            return render(request, OnboardingDetailsView.template_name, {"form": details_form, "step": 1})
        data = dict(details_form.cleaned_data)
        try:
            organization = services.organization_create(
                owner=request.user, name=data.pop("name"), plan=form.cleaned_data["plan"], request=request, **data
            )
        except ServiceError as error:
            form_error_from_service(form, error)
            return render(request, self.template_name, self._context(request, form, details))
        services.organization_switch(user=request.user, organization=organization, request=request)
        del request.session[ONBOARDING_SESSION_KEY]
        messages.success(request, f"Welcome to LeadFlow! {organization.name} is on a free trial.")
        return redirect("dashboard")


# Dashboard ------------------------------------------------------------------------------------------------------


class DashboardView(OrganizationRequiredMixin, TemplateView):
    template_name = "accounts/dashboard.html"

    def get_context_data(self, **kwargs):
        organization = self.request.organization
        role_counts = dict(Membership.objects.values_list("role").annotate(n=Count("id")).values_list("role", "n"))
        return {
            **super().get_context_data(**kwargs),
            "subscription": Subscription.objects.select_related("plan").first(),
            "member_count": sum(role_counts.values()),
            "role_summary": " · ".join(
                f"{role_counts[role]} {Role(role).label.lower()}" for role in Role.values if role_counts.get(role)
            ),
            "open_invitations": selectors.organization_open_invitations(organization=organization).count(),
            "active_api_keys": ApiKey.objects.filter(revoked_at__isnull=True).count(),
            "recent_events": AuditEvent.objects.select_related("actor_user", "actor_api_key")[:8],
            # Over the leads this member may see: an agent's cards count their own leads.
            "leads": dashboard_lead_cards(organization=organization, membership=self.request.membership),
            "can_see_queue": self.request.membership.has_role(Role.MANAGER),
        }


@login_required
@require_POST
def organization_switch(request, organization_id: int):
    organization = get_object_or_404(Organization, pk=organization_id)
    try:
        services.organization_switch(user=request.user, organization=organization, request=request)
    except PermissionDeniedError as error:
        raise Http404 from error
    messages.info(request, f"Switched to {organization.name}.")
    return redirect("dashboard")


# Invitations ------------------------------------------------------------------------------------------------------


class InvitationAcceptView(View):
    """Anyone with the link sees the invitation; accepting needs an account with the invited address."""

    template_name = "accounts/invitation_accept.html"

    def get(self, request, token: str):
        invitation = selectors.invitation_by_token(token=token)
        if invitation is None:
            raise Http404("No such invitation")
        next_url = reverse("invitation_accept", args=[token])
        return render(
            request,
            self.template_name,
            {
                "invitation": invitation,
                "login_url": f"{reverse('account_login')}?next={next_url}",
                "signup_url": f"{reverse('account_signup')}?next={next_url}",
                "email_matches": request.user.is_authenticated
                and request.user.email.lower() == invitation.email.lower(),
            },
        )

    def post(self, request, token: str):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.path}")
        try:
            membership = services.invitation_accept(token=token, user=request.user, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("invitation_accept", token=token)
        messages.success(
            request, f"You joined {membership.organization.name} as {membership.get_role_display().lower()}."
        )
        return redirect("dashboard")


# Settings ---------------------------------------------------------------------------------------------------------


class ProfileView(OrganizationRequiredMixin, View):
    template_name = "accounts/settings/profile.html"

    def get(self, request):
        return render(request, self.template_name, {"form": ProfileForm(instance=request.user)})

    def post(self, request):
        form = ProfileForm(request.POST, instance=request.user)
        if form.is_valid():
            form.save()
            messages.success(request, "Profile saved.")
            return redirect("settings:profile")
        return render(request, self.template_name, {"form": form})


class OrganizationSettingsView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN
    template_name = "accounts/settings/organization.html"

    def get(self, request):
        return render(request, self.template_name, {"form": OrganizationForm(instance=request.organization)})

    def post(self, request):
        # Validate on a copy, so a rejected form never leaves the request's organization half-edited.
        form = OrganizationForm(request.POST, instance=Organization.objects.get(pk=request.organization.pk))
        if form.is_valid():
            services.organization_update(
                organization=request.organization, actor=request.user, request=request, **form.cleaned_data
            )
            messages.success(request, "Organization settings saved.")
            return redirect("settings:organization")
        return render(request, self.template_name, {"form": form})


class TeamView(OrganizationRequiredMixin, View):
    template_name = "accounts/settings/team.html"

    def render_page(self, request, invite_form=None, status=200):
        organization = request.organization
        can_manage = request.membership.has_role(Role.ADMIN)
        return render(
            request,
            self.template_name,
            {
                "members": selectors.organization_members(organization=organization),
                "invitations": selectors.organization_open_invitations(organization=organization) if can_manage else [],
                "invite_form": invite_form or InvitationForm(),
                "can_manage": can_manage,
                "roles": Role.choices,
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                invitation = services.invitation_create(
                    organization=request.organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    inviter=request.membership,
                    request=request,
                )
            except ServiceError as error:
                form_error_from_service(form, error)
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                return redirect("settings:team")
        return self.render_page(request, invite_form=form, status=400)


class MemberRoleView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN

    def post(self, request, membership_id: int):
        membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
        form = RoleForm(request.POST)
        error = None
        if form.is_valid():
            try:
                membership = services.membership_change_role(
                    membership=membership, role=form.cleaned_data["role"], actor=request.membership, request=request
                )
            except ServiceError as exc:
                error = exc.message
        else:
            error = "Choose a valid role."
        if request.htmx:
            membership.refresh_from_db()
            return render(
                request,
                "accounts/settings/partials/member_row.html",
                {
                    "member": membership,
                    "can_manage": True,
                    "roles": Role.choices,
                    "row_error": error,
                    "row_saved": error is None,
                },
            )
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
        return redirect("settings:team")


class MemberRemoveView(OrganizationRequiredMixin, View):
    def post(self, request, membership_id: int):
        membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
        leaving = membership.pk == request.membership.pk
        try:
            services.membership_remove(membership=membership, actor=request.membership, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("settings:team")
        if leaving:
            messages.info(request, f"You left {request.organization.name}.")
            request.session.pop("active_organization_id", None)
            return redirect("dashboard")
        messages.success(request, f"{membership.user.email} was removed from the team.")
        return redirect("settings:team")


class InvitationRevokeView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN

    def post(self, request, invitation_id: int):
        invitation = get_object_or_404(Invitation, pk=invitation_id)
        try:
            services.invitation_revoke(invitation=invitation, actor=request.membership, request=request)
            messages.success(request, f"Invitation for {invitation.email} revoked.")
        except ServiceError as error:
            messages.error(request, error.message)
        return redirect("settings:team")


class ApiKeysView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN
    template_name = "accounts/settings/api_keys.html"

    def render_page(self, request, form=None, created_key=None, status=200):
        return render(
            request,
            self.template_name,
            {
                "api_keys": selectors.organization_api_keys(organization=request.organization),
                "form": form or ApiKeyForm(),
                "created_key": created_key,
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                api_key, raw_key = services.api_key_create(
                    organization=request.organization,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=form.cleaned_data["expires_at"],
                    created_by=request.user,
                    request=request,
                )
            except ServiceError as error:
                form_error_from_service(form, error)
            else:
                # The raw key is rendered in this response only; it is never stored or shown again.
                return self.render_page(request, created_key={"key": raw_key, "api_key": api_key}, status=201)
        return self.render_page(request, form=form, status=400)


class ApiKeyRevokeView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN

    def post(self, request, api_key_id: int):
        api_key = get_object_or_404(ApiKey, pk=api_key_id)
        services.api_key_revoke(api_key=api_key, actor=request.user, request=request)
        messages.success(request, f"API key “{api_key.name}” revoked. Requests using it now fail.")
        return redirect("settings:api_keys")


class AuditLogView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN
    template_name = "accounts/settings/audit.html"

    def get(self, request):
        events = selectors.organization_audit_events(organization=request.organization)
        action = request.GET.get("action", "").strip()
        if action:
            events = events.filter(action__startswith=action)
        page = Paginator(events, 50).get_page(request.GET.get("page"))
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
        return render(request, self.template_name, {"page": page, "action": action, "actions": actions})
