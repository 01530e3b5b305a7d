"""Reads for accounts. Membership lookups here run before a scope exists, so they are the named exceptions."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User


def user_memberships(*, user: User) -> QuerySet[Membership]:
    """Every organization ``user`` belongs to: the one read that must cross tenants (for the switcher)."""
    return Membership.objects.unscoped().filter(user=user).select_related("organization").order_by("organization__name")


def membership_resolve(*, user: User, organization_id: int | None = None, slug: str | None = None) -> Membership | None:
    """The user's membership in the requested organization, or in the one they last used, or their first."""
    memberships = user_memberships(user=user)
    if slug:
        return memberships.filter(organization__slug=slug, organization__is_active=True).first()
    if organization_id:
        found = memberships.filter(organization_id=organization_id).first()
        if found:
            return found
    if user.active_organization_id:
        found = memberships.filter(organization_id=user.active_organization_id).first()
        if found:
            return found
    return memberships.first()


def organization_members(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user").order_by("user__email")


def organization_open_invitations(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True).select_related("invited_by")


def organization_api_keys(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("created_by")


def organization_audit_events(*, organization: Organization) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.select_related("actor_user", "actor_api_key")


def invitation_by_token(*, token: str) -> Invitation | None:
    # Invitations are opened by people who are not members yet: the token is the credential.
    return Invitation.objects.unscoped().select_related("organization", "invited_by").filter(token=token).first()
