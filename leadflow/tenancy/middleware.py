"""Pages: ``request.organization`` and ``request.membership`` from the session's active organization."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone

from .context import reset_scope, set_scope

SESSION_KEY = "active_organization_id"


class OrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        request.organization = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from accounts.selectors import membership_resolve

            membership = membership_resolve(user=user, organization_id=request.session.get(SESSION_KEY))
            if membership is not None:
                request.membership = membership
                request.organization = membership.organization
                if request.session.get(SESSION_KEY) != membership.organization_id:
                    request.session[SESSION_KEY] = membership.organization_id
        token = set_scope(request.organization)
        if request.organization is not None:
            # Times on pages read in the organization's own time zone.
            timezone.activate(zoneinfo.ZoneInfo(request.organization.timezone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
            reset_scope(token)
