"""What messaging does with the outbox's events, in the worker: start automations, stop sequences, notify.

Each handler takes one organization's batch of one topic. Automations never fail a batch: a rule that cannot run
for a lead is logged and skipped (see ``automations_trigger``), so lead intake's own handlers always complete.
"""

from __future__ import annotations

import logging

from leads.constants import StageKind
from leads.selectors import leads_of_events
from leads.services.outbox import outbox_batch_handler

from .constants import AutomationTrigger, NotificationEvent
from .models import Conversation, Message
from .services.automations import automation_rules_exist, automations_trigger, executions_stop_for_lead
from .services.notifications import notify

logger = logging.getLogger(__name__)


def _leads(events) -> list:
    found = leads_of_events(events)
    return [found[event.payload["lead_id"]] for event in events if event.payload.get("lead_id") in found]


@outbox_batch_handler("lead.created")
def start_lead_created_automations(events) -> None:
    leads = [lead for lead in _leads(events) if not lead.duplicate_of_id]
    if leads:
        automations_trigger(
            organization=events[0].organization, trigger=AutomationTrigger.LEAD_CREATED, leads=leads, key="created"
        )


@outbox_batch_handler("lead.stage_changed")
def on_stage_changed(events) -> None:
    found = leads_of_events(events)
    organization = events[0].organization
    for event in events:
        lead = found.get(event.payload.get("lead_id"))
        if lead is None:
            continue
        if lead.stage.kind in (StageKind.WON, StageKind.LOST):
            executions_stop_for_lead(lead=lead, reason=f"lead {lead.stage.kind}")
        automations_trigger(
            organization=organization,
            trigger=AutomationTrigger.STAGE_CHANGED,
            leads=[lead],
            key=f"stage:{event.pk}",
            config_filter=lambda rule, stage_id=lead.stage_id: (
                (rule.trigger_config or {}).get("stage_id") in (None, "", stage_id)
            ),
        )


@outbox_batch_handler("lead.assigned")
def on_lead_assigned(events) -> None:
    found = leads_of_events(events)
    organization = events[0].organization
    for event in events:
        lead = found.get(event.payload.get("lead_id"))
        if lead is None or not lead.owner_id:
            continue
        # The lead's conversations follow it unless someone took them over.
        Conversation.objects.unscoped().filter(organization_id=organization.pk, lead_id=lead.pk).filter(
            assignee_id__in=[None, event.payload.get("previous_owner_id")]
        ).update(assignee_id=lead.owner_id)
        Conversation.objects.unscoped().filter(
            organization_id=organization.pk, lead_id=lead.pk, assignee__isnull=True
        ).update(assignee_id=lead.owner_id)
        notify(
            organization=organization,
            users=[lead.owner],
            event=NotificationEvent.LEAD_ASSIGNED,
            title=f"New lead for you: {lead.display_name}",
            body=f"{lead.get_source_display()} · score {lead.score}",
            url=f"/leads/{lead.pk}/",
            data={"lead_id": lead.pk},
            dedupe_key=f"assigned:{event.pk}",
        )


@outbox_batch_handler("message.received")
def on_message_received(events) -> None:
    organization = events[0].organization
    ids = [event.payload["message_id"] for event in events]
    messages = {
        m.pk: m
        for m in Message.objects.unscoped()
        .filter(organization_id=organization.pk, pk__in=ids)
        .select_related("conversation__assignee", "lead__stage", "lead__owner")
    }
    for event in events:
        message = messages.get(event.payload["message_id"])
        if message is None:
            continue
        lead = message.lead
        if lead is not None:
            lead.organization = organization
            executions_stop_for_lead(lead=lead, reason="lead replied", only_stop_on_reply=True)
            automations_trigger(
                organization=organization,
                trigger=AutomationTrigger.MESSAGE_RECEIVED,
                leads=[lead],
                key=f"message:{message.pk}",
            )
        conversation = message.conversation
        recipient = (
            conversation.assignee if conversation and conversation.assignee_id else (lead.owner if lead else None)
        )
        if recipient is not None:
            notify(
                organization=organization,
                users=[recipient],
                event=NotificationEvent.MESSAGE_RECEIVED,
                title=f"New {message.get_channel_display()} message from {conversation.contact_name or conversation.address}",
                body=(message.body or "")[:200],
                url=f"/inbox/?c={conversation.pk}",
                data={"conversation_id": conversation.pk, "message_id": message.pk},
                dedupe_key=f"message:{message.pk}",
            )


@outbox_batch_handler("lead.delivered")
def on_lead_delivered(events) -> None:
    """A sale's deliveries were planned: the buyer's portal users hear of the lead, automations may start."""
    from campaigns.models import BuyerPortalUser

    organization = events[0].organization
    portal_users: dict[int, list] = {}
    for row in (
        BuyerPortalUser.objects.unscoped()
        .filter(organization_id=organization.pk, buyer_id__in={e.payload.get("buyer_id") for e in events})
        .select_related("user")
    ):
        portal_users.setdefault(row.buyer_id, []).append(row.user)
    automated = automation_rules_exist(organization.pk, AutomationTrigger.LEAD_DELIVERED)
    if not portal_users and not automated:
        return  # most sales: nobody to tell and nothing to start, so the leads are not read
    found = leads_of_events(events)
    for event in events:
        lead = found.get(event.payload.get("lead_id"))
        users = portal_users.get(event.payload.get("buyer_id"), [])
        if lead is None or not users:
            continue
        notify(
            organization=organization,
            users=users,
            event=NotificationEvent.LEAD_DELIVERED,
            title=f"New lead delivered: {lead.display_name}",
            body=", ".join(part for part in (lead.city, lead.state) if part),
            url="/portal/",
            data={"sale_id": event.payload.get("sale_id")},
            dedupe_key=f"delivered:{event.payload.get('sale_id')}",
        )
    leads = [lead for lead in (found.get(e.payload.get("lead_id")) for e in events) if lead is not None]
    if automated and leads:
        automations_trigger(
            organization=organization,
            trigger=AutomationTrigger.LEAD_DELIVERED,
            leads=list(dict.fromkeys(leads)),
            key="delivered",
        )
