"""What may be sent: opt-outs (keywords, unsubscribe links, provider refusals), WhatsApp's 24-hour window.

An opt-out is recorded against the address it came from and the lead, on the lead's timeline, and refuses every
later send to that lead or address on every channel until the lead opts in again (START).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from leadflow.realtime import publish
from leads.constants import ActivityKind
from leads.intake.normalize import NormalizationError, normalize_email, normalize_phone
from leads.services.activity import activity_record

from ..constants import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, WHATSAPP_WINDOW_HOURS, MessageChannel, OptOutMethod
from ..models import Conversation, OptOut

UNSUBSCRIBE_SALT = "messaging.unsubscribe"


def address_normalize(channel: str, address: str, *, region: str | None = None) -> str:
    """E.164 for phones (``whatsapp:`` dropped), lower-case for email; '' when it is not an address at all."""
    address = (address or "").strip()
    try:
        if channel == MessageChannel.EMAIL:
            return normalize_email(address)
        return normalize_phone(address.removeprefix("whatsapp:"), region=region)
    except NormalizationError:
        return ""


def keyword_of(body: str) -> str:
    """The opt-out or opt-in keyword a message is, if it is only that word ("Stop.", " unsubscribe ")."""
    word = re.sub(r"[^\w-]", "", (body or "").strip()).upper()
    if word in OPT_OUT_KEYWORDS or word in OPT_IN_KEYWORDS:
        return word
    return ""


def lead_addresses(lead) -> list[str]:
    return [address for address in (lead.phone, lead.email) if address] if lead is not None else []


def active_opt_out(*, organization_id: int, lead=None, address: str = "") -> OptOut | None:
    """The opt-out that forbids messaging this lead or address, if any (any of the lead's addresses counts)."""
    addresses = {a for a in [address, *lead_addresses(lead)] if a}
    condition = Q(address__in=addresses)
    if lead is not None:
        condition |= Q(lead_id=lead.pk)
    if not addresses and lead is None:
        return None
    return (
        OptOut.objects.unscoped()
        .filter(condition, organization_id=organization_id, revoked_at__isnull=True)
        .order_by("-created_at")
        .first()
    )


@transaction.atomic
def opt_out_record(
    *, organization, address: str, lead=None, channel: str = "", method: str, keyword: str = "", actor=None
) -> OptOut:
    """Record that ``address`` (and its lead) asked not to be messaged; the same active opt-out is returned again."""
    existing = (
        OptOut.objects.unscoped()
        .filter(organization_id=organization.pk, address=address, revoked_at__isnull=True)
        .first()
    )
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            opt_out = OptOut.objects.unscoped().create(
                organization_id=organization.pk,
                address=address,
                lead=lead,
                channel=channel,
                method=method,
                keyword=keyword[:20],
            )
    except IntegrityError:  # recorded at the same moment by another worker
        return OptOut.objects.unscoped().get(organization_id=organization.pk, address=address, revoked_at__isnull=True)
    if lead is not None:
        how = f"replied {keyword}" if keyword else OptOutMethod(method).label.lower()
        activity_record(
            lead=lead,
            kind=ActivityKind.OPTED_OUT,
            actor=actor,
            message=f"Opted out of messages ({how})",
            data={"address": address, "channel": channel, "method": method},
        )
        from .automations import executions_stop_for_lead

        executions_stop_for_lead(lead=lead, reason="opted out")
    publish(organization, "lead.opted_out", {"lead_id": lead.pk if lead else None, "address": address})
    return opt_out


@transaction.atomic
def opt_in_record(*, organization, address: str, lead=None, keyword: str = "", actor=None) -> int:
    """End the active opt-outs of this address and lead; returns how many ended."""
    condition = Q(address=address)
    if lead is not None:
        condition |= Q(lead_id=lead.pk) | Q(address__in=lead_addresses(lead))
    ended = (
        OptOut.objects.unscoped()
        .filter(condition, organization_id=organization.pk, revoked_at__isnull=True)
        .update(revoked_at=timezone.now())
    )
    if ended and lead is not None:
        activity_record(
            lead=lead,
            kind=ActivityKind.OPTED_IN,
            actor=actor,
            message=f"Opted in to messages again{f' (replied {keyword})' if keyword else ''}",
            data={"address": address},
        )
    return ended


def whatsapp_window_open(conversation: Conversation | None, *, now: datetime | None = None) -> bool:
    """Free-form WhatsApp messages only within 24 hours of the lead's last message to us."""
    if conversation is None or conversation.last_inbound_at is None:
        return False
    return (now or timezone.now()) - conversation.last_inbound_at < timedelta(hours=WHATSAPP_WINDOW_HOURS)


def unsubscribe_token(*, organization_id: int, address: str, lead_id: int | None) -> str:
    return signing.dumps({"o": organization_id, "a": address, "l": lead_id}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> dict | None:
    try:
        return signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
