"""The HTML side of tenancy: one mixin every organization page inherits."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from accounts.constants import Role


class OrganizationRequiredMixin(AccessMixin):
    """Signed in, a member of the active organization, with at least ``required_role``.

    Querysets in these views are scoped by the page middleware; the mixin makes sure a scope exists and the role
    fits. Users with no organization yet are sent to onboarding.
    """

    required_role: str = Role.VIEWER

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if request.organization is None:
            return redirect("onboarding")
        if not request.organization.is_active:
            messages.error(request, "This organization is suspended. Contact support to reactivate it.")
            raise PermissionDenied("organization suspended")
        if not request.membership.has_role(self.required_role):
            raise PermissionDenied(f"needs the {Role(self.required_role).label} role")
        return super().dispatch(request, *args, **kwargs)
