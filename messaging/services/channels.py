"""An organization's messaging settings: channels, numbers, quiet hours, the speed-to-lead target, the AI budget."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction

from integrations.crypto import decrypt_json, encrypt_json
from leadflow.caching import ProcessCache
from leadflow.exceptions import ServiceError
from leads.intake.normalize import NormalizationError, normalize_phone

from ..constants import WhatsAppProvider
from ..models import MessagingSettings

EDITABLE_FIELDS = (
    "whatsapp_provider",
    "whatsapp_enabled",
    "sms_enabled",
    "email_enabled",
    "twilio_sms_from",
    "twilio_whatsapp_from",
    "twilio_messaging_service_sid",
    "meta_phone_number_id",
    "meta_business_account_id",
    "email_from",
    "email_reply_domain",
    "quiet_hours_enabled",
    "quiet_hours_start",
    "quiet_hours_end",
    "first_contact_target_minutes",
    "sla_escalation_enabled",
    "ai_enabled",
    "ai_monthly_budget",
)
PHONE_FIELDS = ("twilio_sms_from", "twilio_whatsapp_from")


# Read for every send and every inbound message, changed rarely: each process keeps a row for a few seconds; a save
# is seen at once by the process that made it (``messaging.signals``) and within this time by the others.
_by_organization: ProcessCache[MessagingSettings] = ProcessCache(seconds=10)
_by_number: ProcessCache[MessagingSettings] = ProcessCache(seconds=10)


def messaging_settings_forget() -> None:
    _by_organization.forget()
    _by_number.forget()


def messaging_settings_for(organization_id: int) -> MessagingSettings:
    """The organization's settings (made on first use), as read at most a few seconds ago."""
    found = _by_organization.get(organization_id, lambda: _settings_row(organization_id))
    return copy.copy(found)


def _settings_row(organization_id: int) -> MessagingSettings:
    found = MessagingSettings.objects.unscoped().filter(organization_id=organization_id).first()
    if found is not None:
        return found
    MessagingSettings.objects.unscoped().bulk_create(
        [MessagingSettings(organization_id=organization_id)], ignore_conflicts=True
    )
    return MessagingSettings.objects.unscoped().get(organization_id=organization_id)


def meta_access_token(messaging_settings: MessagingSettings) -> str:
    if messaging_settings.meta_access_token_encrypted:
        return decrypt_json(messaging_settings.meta_access_token_encrypted).get("token", "")
    return settings.WHATSAPP_ACCESS_TOKEN


def settings_for_twilio_number(to: str) -> MessagingSettings | None:
    """Whose Twilio number an inbound message was sent to: ``whatsapp:+1…`` is a WhatsApp number, ``+1…`` SMS."""
    field = "twilio_whatsapp_from" if to.startswith("whatsapp:") else "twilio_sms_from"
    number = to.removeprefix("whatsapp:")
    if not number:
        return None
    found = _by_number.get(
        (field, number),
        lambda: (
            MessagingSettings.objects.unscoped()
            .select_related("organization")
            .filter(organization__is_active=True, **{field: number})
            .first()
        ),
    )
    return copy.copy(found) if found is not None else None


def settings_for_meta_phone_id(phone_number_id: str) -> MessagingSettings | None:
    if not phone_number_id:
        return None
    return (
        MessagingSettings.objects.unscoped()
        .select_related("organization")
        .filter(organization__is_active=True, meta_phone_number_id=phone_number_id)
        .first()
    )


@transaction.atomic
def messaging_settings_update(
    *, organization, actor=None, request=None, meta_access_token: str | None = None, **fields: Any
) -> MessagingSettings:
    """Change the organization's messaging settings; ``meta_access_token`` is write-only (stored encrypted)."""
    from accounts.services import audit_record

    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown messaging settings: {sorted(unknown)}")
    row = _settings_row(organization.pk)
    for name in PHONE_FIELDS:
        if fields.get(name):
            try:
                fields[name] = normalize_phone(str(fields[name]).removeprefix("whatsapp:"), region=None)
            except NormalizationError as error:
                raise ServiceError(str(error), field=name) from None
    changes = {}
    for name, value in fields.items():
        if getattr(row, name) != value:
            changes[name] = [str(getattr(row, name)), str(value)]
            setattr(row, name, value)
    if row.quiet_hours_enabled and (row.quiet_hours_start is None or row.quiet_hours_end is None):
        raise ServiceError("Quiet hours need a start and an end.", field="quiet_hours_start")
    if row.whatsapp_provider not in WhatsAppProvider.values:
        raise ServiceError("Pick Twilio or Meta.", field="whatsapp_provider")
    if row.first_contact_target_minutes < 1:
        raise ServiceError("The target is at least one minute.", field="first_contact_target_minutes")
    if row.ai_monthly_budget is not None and row.ai_monthly_budget < 0:
        raise ServiceError("The budget cannot be negative.", field="ai_monthly_budget")
    if meta_access_token:
        row.meta_access_token_encrypted = encrypt_json({"token": meta_access_token.strip()})
        changes["meta_access_token"] = ["…", "(replaced)"]
    if not changes:
        return row
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise ServiceError(
            "Another workspace already uses this number or phone number id.", field=_number_field(fields)
        ) from None
    audit_record(
        organization=organization,
        action="messaging_settings.updated",
        actor=actor,
        target=row,
        changes=changes,
        request=request,
    )
    return row


def _number_field(fields: dict[str, Any]) -> str:
    for name in ("twilio_sms_from", "twilio_whatsapp_from", "meta_phone_number_id"):
        if fields.get(name):
            return name
    return "non_field_errors"


def quiet_hours_end(messaging_settings: MessagingSettings, *, timezone_name: str, now: datetime) -> datetime | None:
    """When the organization's quiet hours end, if ``now`` falls inside them (they may span midnight)."""
    start, end = messaging_settings.quiet_hours_start, messaging_settings.quiet_hours_end
    if not messaging_settings.quiet_hours_enabled or start is None or end is None or start == end:
        return None
    local = now.astimezone(ZoneInfo(timezone_name))
    clock = local.time().replace(tzinfo=None)
    # A span like 21:00 → 08:00 crosses midnight.
    inside = start <= clock < end if start < end else clock >= start or clock < end
    if not inside:
        return None
    ends = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if ends <= local:
        ends += timedelta(days=1)
    return ends
