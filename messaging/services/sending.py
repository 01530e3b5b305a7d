"""Sending, on every channel, through one service.

``message_send`` checks what compliance allows (opt-outs on any channel, WhatsApp's 24-hour window, the channel
being on), renders the template, records the ``Message`` as queued in the caller's transaction and hands it to
Celery after commit. Quiet hours defer automated sends (``send_after``), never drop them. ``message_deliver`` (the
task) claims the message, checks the opt-outs again, calls the provider, records the answer and meters it.
``message_status_apply`` moves a message up the status ladder from provider callbacks, never down.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope

from ..constants import (
    STATUS_RANK,
    Channel,
    Direction,
    MessageChannel,
    MessagePurpose,
    MessageStatus,
    OptOutMethod,
)
from ..models import Conversation, Message, MessageTemplate
from ..providers import OutboundMessage, SendError, conversation_provider
from .channels import messaging_settings_for, quiet_hours_end
from .compliance import active_opt_out, address_normalize, opt_out_record, unsubscribe_token, whatsapp_window_open
from .conversations import conversation_for, publish_message
from .metering import usage_record
from .templates import render_numbered, template_pick_variant, template_render

logger = logging.getLogger(__name__)

# Waits before the next try of a send the provider could not take (then it is failed).
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1))
# A claimed message is left alone this long (its send is in flight); then the sweep may try it again.
CLAIM_LEASE = timedelta(minutes=2)
# Waits up to this long are a Celery countdown; longer ones are the minute sweep's.
COUNTDOWN_AT_MOST = timedelta(minutes=15)
# Twilio: the number opted out at the carrier (STOP). WhatsApp / Twilio: outside the 24-hour window.
TWILIO_OPTED_OUT = 21610
OUTSIDE_WINDOW_CODES = {"131047", "63016"}

TWILIO_STATUSES = {
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.QUEUED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
    "partially_delivered": MessageStatus.DELIVERED,
}


class MessageRefused(ServiceError):
    """Compliance says no: opted out, outside the WhatsApp window, a template not approved, a channel off."""


def lead_destination(lead, channel: str) -> str:
    return lead.email if channel == MessageChannel.EMAIL else lead.phone


def channel_enabled(messaging_settings, channel: str) -> bool:
    return bool(getattr(messaging_settings, f"{channel}_enabled", False))


def message_send(*, organization, **kwargs) -> Message:
    """Queue one message (and send it after commit). Raises ``MessageRefused`` when compliance forbids it.

    ``channel``, and a ``lead``, a ``conversation`` or a ``to`` address; a ``body`` or a ``template``; ``automated``
    sends wait out quiet hours; ``purpose`` tells lead conversations from team notifications."""
    with organization_scope(organization), transaction.atomic():
        return _message_send(organization=organization, **kwargs)


def _message_send(
    *,
    organization,
    channel: str,
    lead=None,
    conversation: Conversation | None = None,
    to: str = "",
    body: str = "",
    subject: str = "",
    template: MessageTemplate | None = None,
    template_variables: list[str] | None = None,
    actor=None,
    automated: bool = False,
    purpose: str = MessagePurpose.CONVERSATION,
    now: datetime | None = None,
) -> Message:
    now = now or timezone.now()
    row = messaging_settings_for(organization.pk)
    if channel not in MessageChannel.values:
        raise MessageRefused("Pick WhatsApp, SMS or email.", field="channel", code="channel")
    if not channel_enabled(row, channel):
        raise MessageRefused(f"{MessageChannel(channel).label} is turned off for this workspace.", field="channel")
    if conversation is not None:
        lead = lead or conversation.lead
        address = conversation.address
    else:
        address = address_normalize(
            channel,
            to or (lead_destination(lead, channel) if lead is not None else ""),
            region=organization.default_phone_region,
        )
    if not address:
        raise MessageRefused(
            f"No {'email address' if channel == MessageChannel.EMAIL else 'phone number'} to send to.",
            field="to",
            code="no_address",
        )
    opt_out = active_opt_out(organization_id=organization.pk, lead=lead, address=address)
    if opt_out is not None:
        raise MessageRefused(
            f"{address} opted out of messages on {opt_out.created_at:%Y-%m-%d}; nothing is sent to them.",
            field="channel",
            code="opted_out",
        )
    if purpose == MessagePurpose.CONVERSATION and conversation is None:
        conversation = conversation_for(organization=organization, channel=channel, address=address, lead=lead)
    if template is not None:
        if template.channel != channel:
            raise MessageRefused("This template is for another channel.", field="template")
        if not template.usable:
            raise MessageRefused(
                f"The template “{template.name}” is {template.get_status_display().lower()}.", field="template"
            )
        variant = template_pick_variant(template)
        rendered = template_render(template, lead, variant=variant)
        if template_variables is not None and channel == MessageChannel.WHATSAPP:
            # The caller fills the numbered variables itself (a team notice is its one variable).
            rendered.variables = [str(value) for value in template_variables]
            rendered.body = render_numbered(template.body, rendered.variables)
        body, subject = rendered.body, rendered.subject or subject
    else:
        variant, rendered = None, None
        body = (body or "").strip()
        if not body:
            raise MessageRefused("Write a message or pick a template.", field="body")
        if channel == MessageChannel.WHATSAPP and not whatsapp_window_open(conversation, now=now):
            raise MessageRefused(
                "The lead has not written on WhatsApp in the last 24 hours: only an approved template can be sent.",
                field="template",
                code="outside_window",
            )
    if channel == MessageChannel.EMAIL and not subject:
        subject = f"Message from {organization.name}"
    send_after = None
    if automated:
        send_after = quiet_hours_end(row, timezone_name=organization.timezone, now=now)
    message = Message.objects.unscoped().create(
        organization_id=organization.pk,
        conversation=conversation,
        lead=lead,
        purpose=purpose,
        channel=channel,
        direction=Direction.OUTBOUND,
        to_address=address,
        subject=subject[:200],
        body=body,
        template=template,
        template_variant=variant,
        template_variables=rendered.variables if rendered else [],
        status=MessageStatus.QUEUED,
        sent_by=actor,
        automated=automated,
        send_after=send_after,
        created_at=now,
    )
    message.organization = organization
    if conversation is not None:
        conversation.last_message_at = now
        conversation.last_outbound_at = now
        conversation.last_message_preview = body[:160]
        update = ["last_message_at", "last_outbound_at", "last_message_preview"]
        if not automated:
            conversation.needs_reply = False
            update.append("needs_reply")
        conversation.save(update_fields=update)
        publish_message(message, conversation)
    deliver_on_commit(message.pk, delay=(send_after - now) if send_after else None)
    return message


def deliver_on_commit(message_id: int, *, delay: timedelta | None = None) -> None:
    from ..tasks import deliver_message

    def enqueue() -> None:
        try:
            if delay is None or delay <= timedelta(0):
                deliver_message.delay(message_id)
            elif delay <= COUNTDOWN_AT_MOST:
                deliver_message.apply_async((message_id,), countdown=delay.total_seconds())
            # Longer waits (quiet hours): the minute sweep sends it when send_after passes.
        except Exception:  # the broker is down: the sweep sends it
            logger.warning("message %s could not be queued; the sweep will send it", message_id, exc_info=True)

    transaction.on_commit(enqueue)


def _claim(message_id: int, now: datetime) -> Message | None:
    with transaction.atomic():
        message = (
            Message.objects.unscoped()
            .select_for_update(of=("self",), skip_locked=True)
            .select_related("organization", "template", "conversation", "lead")
            .filter(pk=message_id, direction=Direction.OUTBOUND, status=MessageStatus.QUEUED, submitted_at__isnull=True)
            .first()
        )
        if message is None or (message.send_after is not None and message.send_after > now):
            return None
        message.attempts += 1
        message.send_after = now + CLAIM_LEASE
        message.save(update_fields=["attempts", "send_after"])
        return message


def _status_callback_url(channel: str, provider_name: str) -> str:
    if provider_name != "twilio" or not settings.TWILIO_STATUS_CALLBACKS:
        return ""
    return settings.SITE_URL + reverse("messaging-webhook-twilio-status")


def _outbound(message: Message, messaging_settings, provider_name: str) -> OutboundMessage:
    headers: dict[str, str] = {}
    body = message.body
    if message.channel == MessageChannel.EMAIL and message.purpose == MessagePurpose.CONVERSATION:
        token = unsubscribe_token(
            organization_id=message.organization_id, address=message.to_address, lead_id=message.lead_id
        )
        link = settings.SITE_URL + reverse("messaging:unsubscribe", args=[token])
        headers = {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        body = f"{body.rstrip()}\n\n--\nNo more emails from {message.organization.name}: {link}\n"
        if messaging_settings.email_reply_domain:
            # Replies come back through the ESP's inbound webhook, which knows the workspace by this domain.
            headers["Reply-To"] = f"inbox@{messaging_settings.email_reply_domain}"
    from_address = {
        MessageChannel.SMS: messaging_settings.twilio_sms_from,
        MessageChannel.WHATSAPP: messaging_settings.twilio_whatsapp_from,
        MessageChannel.EMAIL: messaging_settings.email_from,
    }[message.channel]
    template_name = ""
    if message.channel == MessageChannel.WHATSAPP and message.template_id:
        variant = message.template_variant
        template_name = (variant.provider_template_id if variant else "") or message.template.provider_template_id
        template_name = template_name or message.template.name
    return OutboundMessage(
        channel=message.channel,
        to=message.to_address,
        body=body,
        from_address=from_address,
        subject=message.subject,
        template_name=template_name,
        template_language=message.template.language if message.template_id else "en",
        template_variables=tuple(message.template_variables or ()),
        status_callback=_status_callback_url(message.channel, provider_name),
        headers=headers,
        reference=str(message.pk),
    )


def message_deliver(*, message_id: int) -> str | None:
    """Hand one queued message to its provider if it is due; returns its new status (None: nothing to do)."""
    now = timezone.now()
    message = _claim(message_id, now)
    if message is None:
        return None
    with organization_scope(message.organization):
        return _deliver(message, now)


def _deliver(message: Message, now: datetime) -> str:
    organization = message.organization
    row = messaging_settings_for(organization.pk)
    opt_out = active_opt_out(organization_id=organization.pk, lead=message.lead, address=message.to_address)
    if opt_out is not None:  # they opted out after it was queued
        return _fail(message, code="opted_out", error="The recipient opted out before it was sent.", now=now)
    provider = conversation_provider(message.channel, row)
    try:
        result = provider.send_message(_outbound(message, row, provider.name))
    except SendError as error:
        return _send_failed(message, error, now=timezone.now())
    now = timezone.now()
    with transaction.atomic():
        status = MessageStatus.SENT if result.status in ("sent", "delivered") else MessageStatus.QUEUED
        fields = {
            "provider": result.provider[:40],
            "provider_message_id": result.message_id[:160],
            "submitted_at": now,
            "status": status,
            "sent_at": now if status == MessageStatus.SENT else None,
            "send_after": None,
            "error_code": "",
            "error_message": "",
        }
        # A status callback that beat us here has nothing to attach to yet; it is processed again later.
        Message.objects.unscoped().filter(pk=message.pk).update(**fields)
        for name, value in fields.items():
            setattr(message, name, value)
        usage_record(
            organization_id=organization.pk,
            channel=Channel(message.channel),
            provider=result.provider,
            source_key=f"message:{message.pk}",
            cost=result.cost,
            currency=result.currency,
            cost_is_estimate=result.cost_is_estimate,
            provider_message_id=result.message_id,
            description=f"{MessageChannel(message.channel).label} to {message.to_address}",
            context={"message_id": message.pk, "lead_id": message.lead_id, "purpose": message.purpose},
        )
        if message.lead_id and message.purpose == MessagePurpose.CONVERSATION:
            from leads.services.leads import lead_mark_contacted

            lead = message.lead
            lead.organization = organization
            lead_mark_contacted(lead=lead, at=now)
        _publish_status(message)
    return message.status


def _send_failed(message: Message, error: SendError, *, now: datetime) -> str:
    code = str(error.code or "")
    if code == str(TWILIO_OPTED_OUT):
        # The carrier refuses this number: it texted STOP somewhere we did not see. Honor it everywhere.
        opt_out_record(
            organization=message.organization,
            address=message.to_address,
            lead=message.lead,
            channel=message.channel,
            method=OptOutMethod.PROVIDER,
        )
        return _fail(message, code=code, error=error.message, now=now)
    if error.retryable and message.attempts <= len(RETRY_DELAYS):
        delay = RETRY_DELAYS[message.attempts - 1]
        Message.objects.unscoped().filter(pk=message.pk).update(
            send_after=now + delay, error_code=code[:40], error_message=error.message[:500]
        )
        deliver_on_commit(message.pk, delay=delay)
        return MessageStatus.QUEUED
    return _fail(message, code=code, error=error.message, now=now)


@transaction.atomic
def _fail(message: Message, *, code: str, error: str, now: datetime) -> str:
    Message.objects.unscoped().filter(pk=message.pk).update(
        status=MessageStatus.FAILED, failed_at=now, send_after=None, error_code=code[:40], error_message=error[:500]
    )
    message.status, message.error_code, message.error_message, message.failed_at = (
        MessageStatus.FAILED,
        code[:40],
        error[:500],
        now,
    )
    _publish_status(message)
    return MessageStatus.FAILED


def _publish_status(message: Message) -> None:
    if message.conversation_id is None:
        return
    from leadflow.realtime import publish

    from .conversations import STATUS_EVENT

    publish(
        message.organization,
        STATUS_EVENT,
        {
            "id": message.pk,
            "conversation_id": message.conversation_id,
            "status": message.status,
            "error_code": message.error_code,
        },
    )


class MessageNotFound(Exception):
    """A status callback for a message we have not recorded the provider's id of (yet)."""


@transaction.atomic
def message_status_apply(
    *, provider: str, provider_message_id: str, status: str, error_code: str = "", error_message: str = "", at=None
) -> Message:
    """Apply a provider's status to the message; late, repeated and out-of-order callbacks change nothing backwards
    (a read message never goes back to delivered, a failed one only moves on to delivered or read)."""
    at = at or timezone.now()
    message = (
        Message.objects.unscoped()
        .select_for_update(of=("self",))
        .select_related("organization")
        .filter(provider=provider, provider_message_id=provider_message_id)
        .first()
    )
    if message is None:
        raise MessageNotFound(f"{provider} {provider_message_id}")
    if status not in STATUS_RANK or message.direction != Direction.OUTBOUND:
        return message
    if STATUS_RANK[status] <= STATUS_RANK[message.status]:
        return message
    update = {"status": status}
    stamp = {
        MessageStatus.SENT: "sent_at",
        MessageStatus.DELIVERED: "delivered_at",
        MessageStatus.READ: "read_at",
        MessageStatus.FAILED: "failed_at",
    }[status]
    update[stamp] = at
    if status in (MessageStatus.DELIVERED, MessageStatus.READ) and message.sent_at is None:
        update["sent_at"] = at
    if status == MessageStatus.READ and message.delivered_at is None:
        update["delivered_at"] = at
    if status == MessageStatus.FAILED:
        update["error_code"] = str(error_code or "")[:40]
        update["error_message"] = (error_message or "")[:500]
    else:
        update["error_code"], update["error_message"] = "", ""
    for name, value in update.items():
        setattr(message, name, value)
    message.save(update_fields=list(update))
    if status == MessageStatus.FAILED and str(error_code) == str(TWILIO_OPTED_OUT):
        opt_out_record(
            organization=message.organization,
            address=message.to_address,
            lead=message.lead,
            channel=message.channel,
            method=OptOutMethod.PROVIDER,
        )
    _publish_status(message)
    return message


def messages_send_due(*, limit: int = 500) -> int:
    """Queue every message whose wait ended (quiet hours over, retry due, a lost task); returns how many."""
    now = timezone.now()
    due = list(
        Message.objects.unscoped()
        .filter(status=MessageStatus.QUEUED, submitted_at__isnull=True, direction=Direction.OUTBOUND)
        .filter(_due(now))
        .order_by("send_after", "id")
        .values_list("pk", flat=True)[:limit]
    )
    from ..tasks import deliver_message

    for message_id in due:
        deliver_message.delay(message_id)
    return len(due)


def _due(now: datetime) -> Q:
    # Those whose wait ended, and never-claimed ones older than a minute (their task was lost).
    return Q(send_after__lte=now) | Q(send_after__isnull=True, created_at__lte=now - timedelta(minutes=1))
