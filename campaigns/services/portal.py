"""The buyer portal's writes: invite codes, joining with one, and removing a portal user.

Portal users are people who see what was delivered to one buyer; they are never members of the organization
(``BuyerPortalUser``, not ``Membership``), so no CRM page or API answers them.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from leadflow.exceptions import ServiceError

from ..models import Buyer, BuyerInvite, BuyerPortalUser
from .catalog import buyer_save

INVITE_CODE_BYTES = 9  # 12 characters of base64url: not guessable, short enough to read out


def invite_code_generate() -> str:
    return secrets.token_urlsafe(INVITE_CODE_BYTES).replace("-", "x").replace("_", "y").upper()


@transaction.atomic
def buyer_invite_create(
    *,
    organization,
    buyer: Buyer | None = None,
    max_uses: int | None = None,
    expires_at: datetime | None = None,
    actor=None,
    request=None,
) -> BuyerInvite:
    """A code to join the portal: as a user of ``buyer``, or, without one, as a new buyer of the organization."""
    if buyer is not None and buyer.organization_id != organization.pk:
        raise ServiceError("Pick one of this organization's buyers.", field="buyer")
    if max_uses is not None and max_uses < 1:
        raise ServiceError("An invite is used at least once.", field="max_uses")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("The expiry must be in the future.", field="expires_at")
    invite = BuyerInvite.objects.unscoped().create(
        organization=organization,
        code=invite_code_generate(),
        buyer=buyer,
        max_uses=max_uses,
        expires_at=expires_at,
        created_by=actor,
    )
    audit_record(
        organization=organization,
        action="buyer_invite.created",
        actor=actor,
        target=invite,
        changes={"buyer": buyer.pk if buyer else None, "max_uses": max_uses},
        request=request,
    )
    return invite


@transaction.atomic
def buyer_invite_revoke(*, invite: BuyerInvite, actor=None, request=None) -> BuyerInvite:
    invite = BuyerInvite.objects.unscoped().select_for_update().get(pk=invite.pk)
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
        audit_record(
            organization=invite.organization, action="buyer_invite.revoked", actor=actor, target=invite, request=request
        )
    return invite


def _new_user(*, email: str, password: str, name: str) -> User:
    email = (email or "").strip().lower()
    if not email:
        raise ServiceError("Enter your email address.", field="email")
    if User.objects.filter(email__iexact=email).exists():
        raise ServiceError("An account with this email exists: sign in, then enter the code.", field="email")
    first, _, last = (name or "").strip().partition(" ")
    user = User(email=email, first_name=first[:150], last_name=last[:150])
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ServiceError(" ".join(error.messages), field="password") from error
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def buyer_portal_join(
    *,
    code: str,
    user: User | None = None,
    email: str = "",
    password: str = "",
    name: str = "",
    buyer_name: str = "",
    company: str = "",
    phone: str = "",
    request=None,
) -> BuyerPortalUser:
    """Redeem an invite code: the signed-in ``user``, or a new account (``email``, ``password``, ``name``), becomes a
    portal user of the invite's buyer, or of a new buyer named ``buyer_name``. Nothing is kept if anything fails."""
    invite = (
        BuyerInvite.objects.unscoped()
        .select_for_update(of=("self",))
        .select_related("organization", "buyer")
        .filter(code=(code or "").strip().upper())
        .first()
    )
    if invite is None or invite.status != "active":
        raise ServiceError(
            "This code is not valid." if invite is None else f"This code is {invite.status}.", field="code"
        )
    if not invite.organization.is_active:
        raise ServiceError("This organization is suspended.", field="code")
    if user is None:
        user = _new_user(email=email, password=password, name=name)
    buyer = invite.buyer
    if buyer is None:
        if not buyer_name.strip():
            raise ServiceError("Enter your company's name: it becomes your buyer account.", field="buyer_name")
        buyer = buyer_save(
            buyer=Buyer(organization=invite.organization),
            data={
                "name": buyer_name.strip()[:120],
                "company": company.strip()[:255],
                "email": user.email,
                "phone": phone.strip()[:20],
            },
            actor=user,
            request=request,
        )
    try:
        with transaction.atomic():
            access = BuyerPortalUser.objects.unscoped().create(organization=invite.organization, buyer=buyer, user=user)
    except IntegrityError:
        raise ServiceError("You already have buyer portal access in this organization.", field="code") from None
    invite.use_count += 1
    invite.save(update_fields=["use_count"])
    audit_record(
        organization=invite.organization,
        action="buyer_portal.joined",
        actor=user,
        target=access,
        changes={"buyer": buyer.pk, "invite": invite.pk, "new_buyer": invite.buyer_id is None},
        request=request,
    )
    return access


@transaction.atomic
def buyer_portal_user_remove(*, access: BuyerPortalUser, actor=None, request=None) -> None:
    audit_record(
        organization=access.buyer.organization,
        action="buyer_portal.removed",
        actor=actor,
        target=access,
        changes={"user": access.user.email, "buyer": access.buyer_id},
        request=request,
    )
    access.delete()
