"""Writes for accounts: organizations, memberships, invitations, API keys and the audit log.

Every function here owns its side effects (audit events, emails after commit, live events), so a change made
from a page, the API, the admin or a command behaves the same.
"""

from __future__ import annotations

import copy
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from billing.models import Plan
from billing.services import subscription_start_trial
from leadflow.caching import ProcessCache
from leadflow.exceptions import PermissionDeniedError, ServiceError
from leadflow.realtime import publish
from leadflow.tenancy.context import organization_scope

from . import tasks
from .constants import ROLE_RANK, ApiKeyScope, Role
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from .signals_organization import organization_created

ORGANIZATION_EDITABLE_FIELDS = (
    "name",
    "country",
    "timezone",
    "currency",
    "default_phone_region",
    "industry",
    "company_size",
    "website",
    "phone",
    "address",
    "tax_id",
    "duplicate_window_days",
    "assignment_strategy",
)


# Audit ----------------------------------------------------------------------------------------------------------


def client_ip(request) -> str | None:
    if request is None:
        return None
    # Behind a proxy the first X-Forwarded-For hop is the client; the proxy is trusted to set it.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    organization: Organization | None,
    action: str,
    actor: User | None = None,
    api_key: ApiKey | None = None,
    target: Any = None,
    changes: dict | None = None,
    request=None,
) -> AuditEvent:
    if request is not None and actor is None and getattr(request, "user", None) and request.user.is_authenticated:
        actor = request.user
    if request is not None and api_key is None and isinstance(getattr(request, "auth", None), ApiKey):
        api_key = request.auth
    return AuditEvent.objects.unscoped().create(
        organization=organization,
        action=action,
        actor_user=actor,
        actor_api_key=api_key,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        changes=changes or {},
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else ""),
    )


# Organizations ----------------------------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _save_with_unique_slug(organization: Organization, attempts: int = 5) -> None:
    """Two workspaces with the same name created at once both pick the same free slug; the loser takes the next."""
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                organization.save()
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            organization.slug = f"{_unique_slug(organization.name)[:50]}-{secrets.token_hex(2)}"


@transaction.atomic
def organization_create(
    *, owner: User, name: str, plan: Plan | None = None, request=None, welcome_email: bool = True, **details: Any
) -> Organization:
    """A new workspace with ``owner`` as its owner and a trial subscription on ``plan``. ``welcome_email=False``
    lets a caller send its own welcome (billing's checkout sends one with a sign-in link)."""
    unknown = set(details) - set(ORGANIZATION_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown organization fields: {sorted(unknown)}")
    if not name.strip():
        raise ServiceError("Give your workspace a name.", field="name")
    organization = Organization(name=name.strip(), slug=_unique_slug(name), **details)
    if not details.get("default_phone_region") and organization.country:
        organization.default_phone_region = str(organization.country)
    organization.full_clean(exclude=["slug"])
    _save_with_unique_slug(organization)
    with organization_scope(organization):
        Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
        if plan is not None:
            subscription_start_trial(organization=organization, plan=plan)
    owner.active_organization = organization
    owner.save(update_fields=["active_organization"])
    audit_record(
        organization=organization, action="organization.created", actor=owner, target=organization, request=request
    )
    organization_created.send(sender=Organization, organization=organization)
    if welcome_email:
        transaction.on_commit(lambda: tasks.send_welcome_email.delay(owner.pk, organization.pk))
    return organization


@transaction.atomic
def organization_update(*, organization: Organization, actor: User | None, request=None, **fields: Any) -> Organization:
    unknown = set(fields) - set(ORGANIZATION_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown organization fields: {sorted(unknown)}")
    changes = {}
    for name, value in fields.items():
        old = getattr(organization, name)
        if str(old) != str(value):
            changes[name] = [str(old), str(value)]
            setattr(organization, name, value)
    if changes:
        organization.full_clean()
        organization.save()
        audit_record(
            organization=organization,
            action="organization.updated",
            actor=actor,
            target=organization,
            changes=changes,
            request=request,
        )
        publish(organization, "organization.updated", {"id": organization.pk, "changed": sorted(changes)})
    return organization


@transaction.atomic
def organization_set_active(
    *, organization: Organization, active: bool, actor: User | None = None, request=None
) -> Organization:
    """Suspend or reactivate a workspace. Suspended, its pages, API keys and sockets are refused; data is kept."""
    if organization.is_active != active:
        organization.is_active = active
        organization.save(update_fields=["is_active", "updated_at"])
        action = "organization.reactivated" if active else "organization.suspended"
        audit_record(organization=organization, action=action, actor=actor, target=organization, request=request)
    return organization


def organization_switch(*, user: User, organization: Organization, request=None) -> Membership:
    membership = Membership.objects.unscoped().filter(user=user, organization=organization).first()
    if membership is None:
        raise PermissionDeniedError("You are not a member of that organization.")
    user.active_organization = organization
    user.save(update_fields=["active_organization"])
    if request is not None and hasattr(request, "session"):
        request.session["active_organization_id"] = organization.pk
    return membership


# Memberships ------------------------------------------------------------------------------------------------------


def _require_manage_members(actor: Membership) -> None:
    if not actor.has_role(Role.ADMIN):
        raise PermissionDeniedError("Only owners and admins can manage the team.")


def _require_can_grant(actor: Membership, role: str) -> None:
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDeniedError("Only an owner can make someone an owner.", field="role")
    if ROLE_RANK[Role(role)] > ROLE_RANK[Role(actor.role)]:
        raise PermissionDeniedError("You cannot grant a role above your own.", field="role")


def _owner_count(organization: Organization) -> int:
    return Membership.objects.unscoped().filter(organization=organization, role=Role.OWNER).count()


def _lock_team(organization_id: int) -> None:
    """Serialize team changes of one organization: two owners demoting each other at once must not both win."""
    Organization.objects.select_for_update().filter(pk=organization_id).first()


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: Membership, request=None) -> Membership:
    if role not in Role.values:
        raise ServiceError(f"“{role}” is not a role.", field="role")
    _require_manage_members(actor)
    _require_can_grant(actor, role)
    if membership.role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDeniedError("Only an owner can change another owner's role.", field="role")
    _lock_team(membership.organization_id)
    membership = Membership.objects.unscoped().select_for_update().get(pk=membership.pk)
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.organization) == 1:
        raise ServiceError("Every organization needs an owner: make someone else owner first.", field="role")
    old = membership.role
    if old == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        organization=membership.organization,
        action="membership.role_changed",
        actor=actor.user,
        target=membership,
        changes={"role": [old, role], "user": membership.user.email},
        request=request,
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Membership, request=None) -> None:
    leaving_self = membership.pk == actor.pk
    if not leaving_self:
        _require_manage_members(actor)
        if membership.role == Role.OWNER and actor.role != Role.OWNER:
            raise PermissionDeniedError("Only an owner can remove an owner.")
    _lock_team(membership.organization_id)
    membership = Membership.objects.unscoped().select_for_update().get(pk=membership.pk)
    if membership.role == Role.OWNER and _owner_count(membership.organization) == 1:
        raise ServiceError("The last owner cannot leave: make someone else owner first.")
    user = membership.user
    organization = membership.organization
    membership.delete()
    if user.active_organization_id == organization.pk:
        user.active_organization = None
        user.save(update_fields=["active_organization"])
    audit_record(
        organization=organization,
        action="membership.removed",
        actor=actor.user,
        target=user,
        changes={"user": user.email, "role": membership.role},
        request=request,
    )


# Invitations ------------------------------------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, inviter: Membership, request=None
) -> Invitation:
    email = User.objects.normalize_email(email).strip().lower()
    if role not in Role.values:
        raise ServiceError(f"“{role}” is not a role.", field="role")
    _require_manage_members(inviter)
    _require_can_grant(inviter, role)
    if Membership.objects.unscoped().filter(organization=organization, user__email__iexact=email).exists():
        raise ServiceError(f"{email} is already a member.", field="email")
    now = timezone.now()
    # Re-inviting replaces the open invitation, so the newest link is the one that works.
    Invitation.objects.unscoped().filter(
        organization=organization, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    invitation = Invitation.objects.unscoped().create(
        organization=organization,
        email=email,
        role=role,
        token=secrets.token_urlsafe(32),
        invited_by=inviter.user,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit_record(
        organization=organization,
        action="invitation.created",
        actor=inviter.user,
        target=invitation,
        changes={"email": email, "role": role},
        request=request,
    )
    transaction.on_commit(lambda: tasks.send_invitation_email.delay(invitation.pk))
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Membership, request=None) -> Invitation:
    _require_manage_members(actor)
    invitation = Invitation.objects.unscoped().select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        raise ServiceError(f"This invitation is already {invitation.status}.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        organization=invitation.organization,
        action="invitation.revoked",
        actor=actor.user,
        target=invitation,
        request=request,
    )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User, request=None) -> Membership:
    invitation = (
        Invitation.objects.unscoped()
        .select_for_update(of=("self",))
        .select_related("organization")
        .filter(token=token)
        .first()
    )
    if invitation is None:
        raise ServiceError("This invitation link is not valid.", code="not_found")
    if not invitation.is_open:
        raise ServiceError(f"This invitation is {invitation.status}. Ask for a new one.", code=invitation.status)
    if invitation.email.lower() != user.email.lower():
        raise PermissionDeniedError(
            f"This invitation was sent to {invitation.email}. Log in with that address to accept it."
        )
    organization = invitation.organization
    membership, created = Membership.objects.unscoped().get_or_create(
        organization=organization, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    organization_switch(user=user, organization=organization, request=request)
    audit_record(
        organization=organization,
        action="invitation.accepted",
        actor=user,
        target=invitation,
        changes={"role": membership.role},
        request=request,
    )
    if created:
        publish(organization, "member.joined", {"user_id": user.pk, "email": user.email, "role": membership.role})
    return membership


def invitations_purge_expired(*, older_than_days: int = 30) -> int:
    """Delete invitations that expired long ago; recent ones stay so admins can see what lapsed."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = Invitation.objects.unscoped().filter(accepted_at__isnull=True, expires_at__lt=cutoff).delete()
    return deleted


# API keys -----------------------------------------------------------------------------------------------------------


class ApiKeyInvalid(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@transaction.atomic
def api_key_create(
    *,
    organization: Organization,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    created_by: User | None = None,
    request=None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw key, which is never stored and must be shown once."""
    if not name.strip():
        raise ServiceError("Name the key after what will use it.", field="name")
    scopes = sorted(set(scopes))
    if not scopes:
        raise ServiceError("Choose at least one scope.", field="scopes")
    invalid = [s for s in scopes if s not in ApiKeyScope.values]
    if invalid:
        raise ServiceError(f"Unknown scope: {', '.join(invalid)}.", field="scopes")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("The expiry must be in the future.", field="expires_at")
    for _ in range(5):
        lookup_id = secrets.token_hex(4)
        raw_key = f"{ApiKey.PREFIX}{lookup_id}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.unscoped().create(
                    organization=organization,
                    name=name.strip(),
                    lookup_id=lookup_id,
                    key_hash=ApiKey.hash_key(raw_key),
                    scopes=scopes,
                    expires_at=expires_at,
                    created_by=created_by,
                )
            break
        except IntegrityError:  # a lookup id collision: 1 in 4 billion, try another
            continue
    else:  # pragma: no cover
        raise ServiceError("Could not create a key, try again.")
    audit_record(
        organization=organization,
        action="api_key.created",
        actor=created_by,
        target=api_key,
        changes={"scopes": ", ".join(scopes)},
        request=request,
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User | None, request=None) -> ApiKey:
    api_key = ApiKey.objects.unscoped().select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            organization=api_key.organization, action="api_key.revoked", actor=actor, target=api_key, request=request
        )
    return api_key


# Writing last_used_at on every request would turn every API read into a write; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_LOOKUP_ID = re.compile(r"[0-9a-f]{1,16}")


# Every API request looks its key up. A process keeps what it read for a few seconds: a revoked or expired key, or a
# suspended organization, is refused everywhere within that time (at once by the process that saved the change: see
# ``accounts.signals.forget_cached_api_keys``).
_key_cache: ProcessCache[ApiKey] = ProcessCache(seconds=10)


def api_keys_forget() -> None:
    """Drop this process's cached keys (after a revocation or a suspension, and between tests)."""
    _key_cache.forget()


def _api_key_by_lookup_id(lookup_id: str) -> ApiKey | None:
    cached = _key_cache.get(
        lookup_id,
        lambda: ApiKey.objects.unscoped().select_related("organization").filter(lookup_id=lookup_id).first(),
    )
    if cached is None:
        return None
    # Each request gets its own copies: nothing one request sets on them can leak into another.
    api_key = copy.copy(cached)
    api_key.organization = copy.copy(cached.organization)
    return api_key


def api_key_authenticate(raw_key: str) -> ApiKey:
    """The active key for ``raw_key``; raises :class:`ApiKeyInvalid` with a reason a client can act on."""
    if not raw_key.startswith(ApiKey.PREFIX) or raw_key.count("_") < 2:
        raise ApiKeyInvalid("Malformed API key.")
    lookup_id = raw_key[len(ApiKey.PREFIX) :].split("_", 1)[0]
    # Lookup ids are hex (secrets.token_hex); anything else cannot match, and must not reach the database (a NUL
    # character there is a DataError, i.e. a 500, instead of a 401).
    if not _LOOKUP_ID.fullmatch(lookup_id):
        raise ApiKeyInvalid("Malformed API key.")
    api_key = _api_key_by_lookup_id(lookup_id)
    if api_key is None or not secrets.compare_digest(api_key.key_hash, ApiKey.hash_key(raw_key)):
        raise ApiKeyInvalid("Invalid API key.")
    if api_key.revoked_at is not None:
        raise ApiKeyInvalid("This API key has been revoked.")
    now = timezone.now()
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise ApiKeyInvalid("This API key has expired.")
    if not api_key.organization.is_active:
        raise ApiKeyInvalid("This organization is suspended.")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.unscoped().filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        if (cached := _key_cache.peek(lookup_id)) is not None:
            cached.last_used_at = now
    return api_key
