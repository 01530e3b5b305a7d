"""Receivers: every new organization gets its welcome automation; anymail's inbound and tracking webhooks are
stored raw and processed like every other provider's."""

from __future__ import annotations

import json

from anymail.signals import inbound, tracking
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Organization
from accounts.signals_organization import organization_created

from .models import MessagingSettings


@receiver(post_save, sender=MessagingSettings)
@receiver(post_save, sender=Organization)
def forget_cached_settings(sender, **kwargs):
    """Settings (or an organization suspended) saved anywhere are read afresh by this process's next message."""
    from .services.channels import messaging_settings_forget

    messaging_settings_forget()


@receiver(organization_created)
def install_welcome_automation(sender, organization, **kwargs):
    from .services.automations import welcome_automation_install

    welcome_automation_install(organization=organization)


def _store_and_process(kind: str, data: dict, esp_name: str) -> None:
    from .services.inbound import provider_event_store
    from .tasks import process_provider_event

    event = provider_event_store(
        provider="email",
        kind=kind,
        raw_body=json.dumps(data, default=str),
        content_type="application/json",
        headers={"X-Anymail-Esp": esp_name},
        url="",
        # anymail verified the webhook's basic-auth secret (and the ESP's signature) before sending the signal.
        signature_valid=True,
    )
    transaction.on_commit(lambda: process_provider_event.delay(event.pk))


@receiver(tracking)
def email_tracking_received(sender, event, esp_name, **kwargs):
    _store_and_process(
        "tracking",
        {
            "event_type": event.event_type,
            "message_id": event.message_id,
            "recipient": event.recipient,
            "timestamp": event.timestamp.isoformat() if event.timestamp else None,
            "description": event.description,
            "reject_reason": event.reject_reason,
            "esp_event": event.esp_event if isinstance(event.esp_event, dict | list) else str(event.esp_event),
        },
        esp_name,
    )


@receiver(inbound)
def email_inbound_received(sender, event, esp_name, **kwargs):
    message = event.message
    sender_address = message.from_email
    _store_and_process(
        "inbound",
        {
            "from": sender_address.addr_spec if sender_address else "",
            "from_name": sender_address.display_name if sender_address else "",
            "to": message.to[0].addr_spec if message.to else "",
            "subject": message.subject or "",
            "text": message.text or "",
            "message_id": (message.get("Message-ID") or "").strip("<> "),
            "raw": message.as_string()[:200000],
        },
        esp_name,
    )
