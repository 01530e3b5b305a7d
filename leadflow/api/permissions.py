"""Membership first: who is asking, for which organization, with which role or API key scope."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from accounts.constants import Role
from accounts.models import ApiKey
from accounts.selectors import membership_resolve
from leadflow.tenancy.middleware import SESSION_KEY

ORGANIZATION_HEADER = "X-Organization"


def resolve_request_organization(request) -> None:
    """Set ``request.organization`` and ``request.membership`` from the API key or the user's membership.

    Users of several organizations pick one with the ``X-Organization: <slug>`` header; otherwise the session's
    active organization (browser) or the one they last used (token) applies.
    """
    if isinstance(request.auth, ApiKey):
        request.organization = request.auth.organization
        request.membership = None
        return
    user = request.user
    if not (user and user.is_authenticated):
        raise exceptions.NotAuthenticated()
    slug = request.headers.get(ORGANIZATION_HEADER, "").strip()
    session = getattr(request._request, "session", None)
    membership = membership_resolve(
        user=user, slug=slug or None, organization_id=session.get(SESSION_KEY) if session is not None else None
    )
    if membership is None:
        if slug:
            raise exceptions.PermissionDenied(f"You are not a member of an organization “{slug}”.")
        raise exceptions.PermissionDenied("You are not a member of any organization yet: finish onboarding first.")
    if not membership.organization.is_active:
        raise exceptions.PermissionDenied("This organization is suspended.")
    request.organization = membership.organization
    request.membership = membership


class OrganizationPermission(permissions.BasePermission):
    """Grants access when the caller belongs to an organization with the role (or key scope) the action needs.

    The view declares ``read_role``/``write_role`` (or ``action_roles``) and ``read_scope``/``write_scope``
    (``None`` refuses API keys).
    """

    def has_permission(self, request, view) -> bool:
        resolve_request_organization(request)
        is_read = request.method in permissions.SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            scope = view.required_api_key_scope(is_read)
            if scope is None:
                raise exceptions.PermissionDenied("API keys cannot use this endpoint; sign in as a team member.")
            if not request.auth.has_scope(scope):
                raise exceptions.PermissionDenied(f"This API key lacks the “{scope}” scope.")
            return True
        role = view.required_role(is_read)
        if not request.membership.has_role(role):
            raise exceptions.PermissionDenied(f"This needs the {Role(role).label.lower()} role or higher.")
        return True
