"""Inbound provider webhooks: stored raw first, then processed in a task (idempotent on the provider's ids).

Twilio posts inbound messages and status callbacks as forms signed with ``X-Twilio-Signature`` (checked with the
SDK's ``RequestValidator`` over the public URL); Meta posts JSON signed with ``X-Hub-Signature-256`` (HMAC-SHA256 of
the raw body with the app secret); email arrives through anymail's inbound and tracking signals. A message from an
address we know joins that lead's conversation; an unknown one becomes a lead through the intake (source
"message"). Opt-out and opt-in keywords are recorded as they arrive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leadflow.tenancy.context import organization_scope
from leads.constants import LeadSource, SubmissionStatus
from leads.intake.pipeline import lead_intake
from leads.services.outbox import outbox_publish

from ..constants import (
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    ConversationStatus,
    Direction,
    MessageChannel,
    MessageStatus,
    OptOutMethod,
    ProviderEventStatus,
)
from ..models import Message, ProviderEvent
from .channels import settings_for_meta_phone_id, settings_for_twilio_number
from .compliance import address_normalize, keyword_of, opt_in_record, opt_out_record
from .conversations import conversation_for, lead_for_address, publish_message
from .sending import TWILIO_STATUSES, MessageNotFound, message_status_apply

logger = logging.getLogger(__name__)

SECRET_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization", "x-csrftoken"})


def provider_event_store(
    *, provider: str, kind: str, raw_body: bytes | str, content_type: str, headers, url: str, signature_valid: bool
) -> ProviderEvent:
    """Keep the request as it arrived, committed at once (outside any transaction), before anything else runs."""
    if isinstance(raw_body, bytes):
        raw_body = raw_body.decode("utf-8", errors="replace")
    return ProviderEvent.objects.unscoped().create(
        provider=provider,
        kind=kind,
        raw_body=raw_body.replace("\x00", "\ufffd"),
        content_type=(content_type or "")[:120],
        headers={k: str(v)[:1000] for k, v in dict(headers).items() if k.lower() not in SECRET_HEADERS},
        url=url[:1000],
        signature_valid=signature_valid,
        status=ProviderEventStatus.RECEIVED if signature_valid else ProviderEventStatus.REJECTED,
    )


def meta_signature_valid(*, app_secret: str, body: bytes, header: str | None) -> bool:
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def twilio_signature_valid(*, urls: list[str], params: dict[str, str], signature: str | None) -> bool:
    """The SDK's own check, against each URL the request may have been signed for (SITE_URL's, the proxy's)."""
    from twilio.request_validator import RequestValidator

    if not settings.TWILIO_AUTH_TOKEN or not signature:
        return False
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    return any(validator.validate(url, params, signature) for url in dict.fromkeys(urls))


# Processing ----------------------------------------------------------------------------------------------------------


def provider_event_process(*, event_id: int) -> str:
    """Process one stored event; safe to run twice. Raises ``MessageNotFound`` for a status that arrived before its
    message's send was recorded (the task tries again shortly)."""
    event = ProviderEvent.objects.unscoped().filter(pk=event_id).first()
    if event is None or event.status in (ProviderEventStatus.PROCESSED, ProviderEventStatus.IGNORED):
        return "done"
    if not event.signature_valid:
        return ProviderEventStatus.REJECTED
    handler = _HANDLERS[(event.provider, event.kind)]
    try:
        outcome = handler(event)
    except MessageNotFound:
        _event_mark(event, ProviderEventStatus.FAILED, error="The message of this status is not recorded yet.")
        raise
    except Exception as error:
        logger.exception("provider event %s failed", event.pk)
        _event_mark(event, ProviderEventStatus.FAILED, error=f"{type(error).__name__}: {error}")
        return ProviderEventStatus.FAILED
    _event_mark(event, outcome)
    return outcome


def _event_mark(event: ProviderEvent, status: str, *, error: str = "") -> None:
    update: dict[str, Any] = {
        "status": status,
        "error": error[:2000],
        "processed_at": timezone.now(),
        "attempts": F("attempts") + 1,
    }
    if getattr(event, "_organization_id", None):
        update["organization_id"] = event._organization_id
    ProviderEvent.objects.unscoped().filter(pk=event.pk).update(**update)


def _form(event: ProviderEvent) -> dict[str, str]:
    return dict(parse_qsl(event.raw_body, keep_blank_values=True))


def _twilio_message(event: ProviderEvent) -> str:
    params = _form(event)
    to, sender = params.get("To", ""), params.get("From", "")
    row = settings_for_twilio_number(to)
    if row is None:
        logger.info("twilio inbound message %s to %s: no organization has this number", params.get("MessageSid"), to)
        return ProviderEventStatus.IGNORED
    event._organization_id = row.organization_id
    channel = MessageChannel.WHATSAPP if sender.startswith("whatsapp:") else MessageChannel.SMS
    media = [
        {"url": params.get(f"MediaUrl{n}", ""), "content_type": params.get(f"MediaContentType{n}", "")}
        for n in range(int(params.get("NumMedia") or 0))
    ]
    inbound_message_receive(
        organization=row.organization,
        channel=channel,
        from_address=sender,
        to_address=to.removeprefix("whatsapp:"),
        body=params.get("Body", ""),
        media=media,
        provider="twilio",
        provider_message_id=params.get("MessageSid") or params.get("SmsSid", ""),
        contact_name=params.get("ProfileName", ""),
    )
    return ProviderEventStatus.PROCESSED


def _twilio_status(event: ProviderEvent) -> str:
    params = _form(event)
    status = TWILIO_STATUSES.get(params.get("MessageStatus", "").lower())
    sid = params.get("MessageSid") or params.get("SmsSid", "")
    if status is None or not sid:
        return ProviderEventStatus.IGNORED  # received/receiving are inbound; unknown words are not ours to guess
    message = message_status_apply(
        provider="twilio",
        provider_message_id=sid,
        status=status,
        error_code=params.get("ErrorCode", ""),
        error_message=params.get("ErrorMessage", ""),
    )
    event._organization_id = message.organization_id
    return ProviderEventStatus.PROCESSED


META_STATUSES = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
}


def _unix(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError):
        return None


def _meta_text(message: dict[str, Any]) -> tuple[str, list[dict]]:
    kind = message.get("type")
    if kind == "text":
        return str((message.get("text") or {}).get("body", "")), []
    if kind == "button":
        return str((message.get("button") or {}).get("text", "")), []
    if kind == "interactive":
        reply = (
            (message.get("interactive") or {}).get("button_reply")
            or (message.get("interactive") or {}).get("list_reply")
            or {}
        )
        return str(reply.get("title", "")), []
    if kind in ("image", "document", "audio", "video", "sticker"):
        media = message.get(kind) or {}
        return str(media.get("caption", "")), [{"id": media.get("id", ""), "content_type": media.get("mime_type", "")}]
    return "", []


def _meta_webhook(event: ProviderEvent) -> str:
    body = json.loads(event.raw_body)
    if body.get("object") != "whatsapp_business_account":
        return ProviderEventStatus.IGNORED
    handled = False
    pending_statuses = False
    for entry in body.get("entry") or []:
        for change in entry.get("changes") or []:
            if change.get("field") != "messages":
                continue
            value = change.get("value") or {}
            row = settings_for_meta_phone_id(str((value.get("metadata") or {}).get("phone_number_id", "")))
            if row is None:
                continue
            event._organization_id = row.organization_id
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name", "") for c in value.get("contacts") or []}
            for message in value.get("messages") or []:
                text, media = _meta_text(message)
                inbound_message_receive(
                    organization=row.organization,
                    channel=MessageChannel.WHATSAPP,
                    from_address="+" + str(message.get("from", "")).lstrip("+"),
                    to_address=str((value.get("metadata") or {}).get("display_phone_number", "")),
                    body=text,
                    media=media,
                    provider="meta",
                    provider_message_id=str(message.get("id", "")),
                    contact_name=names.get(message.get("from"), ""),
                    received_at=_unix(message.get("timestamp")),
                )
                handled = True
            for status in value.get("statuses") or []:
                ours = META_STATUSES.get(str(status.get("status", "")))
                if ours is None:
                    continue
                errors = status.get("errors") or [{}]
                try:
                    message_status_apply(
                        provider="meta",
                        provider_message_id=str(status.get("id", "")),
                        status=ours,
                        error_code=str(errors[0].get("code", "")),
                        error_message=str(errors[0].get("title", "")),
                        at=_unix(status.get("timestamp")),
                    )
                except MessageNotFound:
                    pending_statuses = True
                handled = True
    if pending_statuses:
        raise MessageNotFound("a status of this notification arrived before its message was recorded")
    return ProviderEventStatus.PROCESSED if handled else ProviderEventStatus.IGNORED


def _email_inbound(event: ProviderEvent) -> str:
    data = json.loads(event.raw_body)
    to_domain = str(data.get("to", "")).rsplit("@", 1)[-1].lower()
    from .channels import MessagingSettings

    row = (
        MessagingSettings.objects.unscoped()
        .select_related("organization")
        .filter(email_reply_domain__iexact=to_domain, organization__is_active=True)
        .first()
        if to_domain
        else None
    )
    if row is None:
        return ProviderEventStatus.IGNORED
    event._organization_id = row.organization_id
    inbound_message_receive(
        organization=row.organization,
        channel=MessageChannel.EMAIL,
        from_address=data.get("from", ""),
        to_address=data.get("to", ""),
        body=data.get("text", ""),
        subject=data.get("subject", ""),
        media=[],
        provider="email",
        provider_message_id=data.get("message_id", "") or f"event-{event.pk}",
        contact_name=data.get("from_name", ""),
    )
    return ProviderEventStatus.PROCESSED


EMAIL_TRACKING = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "opened": MessageStatus.READ,
    "clicked": MessageStatus.READ,
    "bounced": MessageStatus.FAILED,
    "rejected": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
}


def _email_tracking(event: ProviderEvent) -> str:
    data = json.loads(event.raw_body)
    status = EMAIL_TRACKING.get(data.get("event_type", ""))
    message_id = str(data.get("message_id") or "").strip("<>")
    if data.get("event_type") in ("unsubscribed", "complained") and data.get("recipient"):
        message = (
            Message.objects.unscoped()
            .select_related("organization", "lead")
            .filter(provider_message_id=message_id)
            .first()
        )
        if message is not None:
            event._organization_id = message.organization_id
            opt_out_record(
                organization=message.organization,
                address=message.to_address,
                lead=message.lead,
                channel=MessageChannel.EMAIL,
                method=OptOutMethod.LINK if data["event_type"] == "unsubscribed" else OptOutMethod.PROVIDER,
            )
            return ProviderEventStatus.PROCESSED
        return ProviderEventStatus.IGNORED
    if status is None or not message_id:
        return ProviderEventStatus.IGNORED
    provider = (
        Message.objects.unscoped().filter(provider_message_id=message_id).values_list("provider", flat=True).first()
    )
    if provider is None:
        return ProviderEventStatus.IGNORED
    message = message_status_apply(
        provider=provider,
        provider_message_id=message_id,
        status=status,
        error_message=str(data.get("description") or data.get("reject_reason") or ""),
        at=datetime.fromisoformat(data["timestamp"]) if data.get("timestamp") else None,
    )
    event._organization_id = message.organization_id
    return ProviderEventStatus.PROCESSED


_HANDLERS = {
    ("twilio", "message"): _twilio_message,
    ("twilio", "status"): _twilio_status,
    ("meta", "whatsapp"): _meta_webhook,
    ("email", "inbound"): _email_inbound,
    ("email", "tracking"): _email_tracking,
}


# The inbound message itself ------------------------------------------------------------------------------------------


def inbound_message_receive(
    *,
    organization,
    channel: str,
    from_address: str,
    to_address: str,
    body: str,
    media: list[dict],
    provider: str,
    provider_message_id: str,
    contact_name: str = "",
    subject: str = "",
    received_at: datetime | None = None,
) -> Message | None:
    """Record a message a lead sent us (once per provider message id) in the lead's conversation."""
    if (
        provider_message_id
        and Message.objects.unscoped().filter(provider=provider, provider_message_id=provider_message_id).exists()
    ):
        return None  # a re-delivery
    address = address_normalize(channel, from_address, region=organization.default_phone_region)
    if not address:
        logger.info("inbound %s message %s: %r is not an address", channel, provider_message_id, from_address)
        return None
    now = timezone.now()
    received_at = received_at or now
    lead = lead_for_address(organization_id=organization.pk, channel=channel, address=address)
    if lead is None:
        lead = _lead_from_message(organization, channel=channel, address=address, name=contact_name, body=body)
    with transaction.atomic(), organization_scope(organization):
        conversation = conversation_for(
            organization=organization, channel=channel, address=address, lead=lead, contact_name=contact_name
        )
        message = Message.objects.unscoped().create(
            organization_id=organization.pk,
            conversation=conversation,
            lead=lead,
            channel=channel,
            direction=Direction.INBOUND,
            to_address=to_address[:254],
            from_address=address,
            subject=subject[:200],
            body=body,
            media=media,
            provider=provider,
            provider_message_id=provider_message_id[:160],
            status=MessageStatus.RECEIVED,
            received_at=received_at,
            created_at=now,
        )
        message.organization = organization
        # Our messages since the lead's last one were answered (reply rates per template and variant).
        Message.objects.unscoped().filter(
            conversation=conversation, direction=Direction.OUTBOUND, replied_at__isnull=True
        ).update(replied_at=now)
        conversation.status = ConversationStatus.OPEN
        conversation.unread_count += 1
        conversation.needs_reply = True
        conversation.last_inbound_at = max(received_at, conversation.last_inbound_at or received_at)
        conversation.last_message_at = now
        conversation.last_message_preview = (body or "[attachment]")[:160]
        conversation.save(
            update_fields=[
                "status",
                "unread_count",
                "needs_reply",
                "last_inbound_at",
                "last_message_at",
                "last_message_preview",
            ]
        )
        keyword = keyword_of(body)
        if keyword in OPT_OUT_KEYWORDS:
            opt_out_record(
                organization=organization,
                address=address,
                lead=lead,
                channel=channel,
                method=OptOutMethod.KEYWORD,
                keyword=keyword,
            )
        elif keyword in OPT_IN_KEYWORDS:
            opt_in_record(organization=organization, address=address, lead=lead, keyword=keyword)
        publish_message(message, conversation)
        outbox_publish(
            organization=organization,
            topic="message.received",
            payload={
                "message_id": message.pk,
                "conversation_id": conversation.pk,
                "lead_id": lead.pk if lead else None,
            },
        )
    return message


def _lead_from_message(organization, *, channel: str, address: str, name: str, body: str):
    payload: dict[str, Any] = {"email" if channel == MessageChannel.EMAIL else "phone": address}
    if name:
        payload["full_name"] = name
    payload["custom"] = {"first_message": (body or "")[:500], "first_channel": channel}
    outcome = lead_intake(
        organization=organization,
        source=LeadSource.MESSAGE,
        payload=payload,
        context={"channel": channel},
        content_type="application/json",
    )
    if outcome.status in (SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE) and outcome.lead is not None:
        lead = outcome.original if outcome.status == SubmissionStatus.DUPLICATE and outcome.original else outcome.lead
        lead.organization = organization
        return lead
    logger.info("inbound %s message from %s made no lead: %s", channel, address, outcome.errors)
    return None


def provider_events_sweep(*, limit: int = 500) -> int:
    """Queue again events whose processing failed or whose task was lost (up to 10 tries)."""
    from datetime import timedelta

    from ..tasks import process_provider_event

    cutoff = timezone.now() - timedelta(minutes=2)
    ids = list(
        ProviderEvent.objects.unscoped()
        .filter(status__in=[ProviderEventStatus.RECEIVED, ProviderEventStatus.FAILED], received_at__lt=cutoff)
        .filter(attempts__lt=10, signature_valid=True)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in ids:
        process_provider_event.delay(event_id)
    return len(ids)
