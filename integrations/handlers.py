"""Lead events to outbound webhooks: run by the outbox worker (see :mod:`leads.services.outbox`).

Each handler takes a batch of one organization's events and, in the outbox's transaction, writes a message per
event and a delivery per subscribed endpoint; the sends are queued when that transaction commits. An organization
with no subscription to the event costs one query per batch.
"""

from __future__ import annotations

from typing import Any

from leads.selectors import leads_of_events
from leads.services.outbox import outbox_batch_handler

from .constants import WebhookEventType
from .events import webhook_lead_data
from .selectors.webhooks import webhook_endpoints_subscribed
from .services.webhooks import deliveries_enqueue, webhook_messages_create

# What each event adds to the lead, read from the outbox event's payload (as the lead services publish it).
EVENT_EXTRAS: dict[str, tuple[str, ...]] = {
    WebhookEventType.LEAD_CREATED: (),
    WebhookEventType.LEAD_UPDATED: ("changed_fields",),
    WebhookEventType.LEAD_STAGE_CHANGED: ("previous_stage",),
    WebhookEventType.LEAD_ASSIGNED: ("previous_owner_id", "automatic"),
    WebhookEventType.LEAD_DUPLICATE: ("original_id",),
}


def _send_lead_events(event_type: str, events) -> None:
    organization = events[0].organization
    endpoints = list(webhook_endpoints_subscribed(organization=organization, event_type=event_type))
    if not endpoints:
        return
    leads = leads_of_events(events)
    items: list[tuple[str, dict[str, Any], Any]] = []
    for event in events:
        lead = leads.get(event.payload["lead_id"])
        if lead is None:
            continue  # deleted before the worker got to it
        data = webhook_lead_data(lead)
        for name in EVENT_EXTRAS[event_type]:
            data[name] = event.payload.get(name)
        items.append((f"outbox:{event.pk}", data, event.created_at))
    messages = webhook_messages_create(organization=organization, event_type=event_type, items=items)
    deliveries_enqueue(messages=messages, endpoints=endpoints)


@outbox_batch_handler("lead.created")
def send_lead_created_webhooks(events) -> None:
    _send_lead_events(WebhookEventType.LEAD_CREATED, events)


@outbox_batch_handler("lead.updated")
def send_lead_updated_webhooks(events) -> None:
    _send_lead_events(WebhookEventType.LEAD_UPDATED, events)


@outbox_batch_handler("lead.stage_changed")
def send_lead_stage_changed_webhooks(events) -> None:
    _send_lead_events(WebhookEventType.LEAD_STAGE_CHANGED, events)


@outbox_batch_handler("lead.assigned")
def send_lead_assigned_webhooks(events) -> None:
    _send_lead_events(WebhookEventType.LEAD_ASSIGNED, events)


@outbox_batch_handler("lead.duplicate")
def send_lead_duplicate_webhooks(events) -> None:
    _send_lead_events(WebhookEventType.LEAD_DUPLICATE, events)


@outbox_batch_handler("lead.created")
@outbox_batch_handler("lead.stage_changed")
def queue_meta_crm_conversions(events) -> None:
    """Facebook leads' stages back to Meta (Conversions API for CRM), for connections that opted in: the first
    stage when the lead arrives, then every stage it enters."""
    from .services.conversions import conversion_events_queue

    conversion_events_queue(events=events)
