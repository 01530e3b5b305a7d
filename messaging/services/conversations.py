"""Conversations: one per address and channel, read/unread, assignment, archiving, and what live pages receive."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from leadflow.realtime import publish
from leads.models import Lead

from ..constants import ConversationStatus, MessageChannel
from ..models import Conversation, Message

CONVERSATION_EVENT = "conversation.updated"
MESSAGE_EVENT = "message.created"
STATUS_EVENT = "message.status"


def conversation_summary(conversation: Conversation) -> dict:
    return {
        "id": conversation.pk,
        "channel": conversation.channel,
        "address": conversation.address,
        "name": conversation.contact_name or conversation.address,
        "lead_id": conversation.lead_id,
        "status": conversation.status,
        "assignee_id": conversation.assignee_id,
        "unread_count": conversation.unread_count,
        "needs_reply": conversation.needs_reply,
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
        "preview": conversation.last_message_preview,
    }


def message_summary(message: Message) -> dict:
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "channel": message.channel,
        "status": message.status,
        "preview": (message.body or "")[:160],
        "created_at": message.created_at.isoformat(),
    }


def publish_message(message: Message, conversation: Conversation | None) -> None:
    payload = {"message": message_summary(message)}
    if conversation is not None:
        payload["conversation"] = conversation_summary(conversation)
    publish(message.organization, MESSAGE_EVENT, payload)


def publish_conversation(conversation: Conversation) -> None:
    publish(conversation.organization, CONVERSATION_EVENT, conversation_summary(conversation))


def lead_for_address(*, organization_id: int, channel: str, address: str) -> Lead | None:
    """The lead with this phone (SMS, WhatsApp) or email: the original, newest first, never a duplicate."""
    field = "email" if channel == MessageChannel.EMAIL else "phone"
    return (
        Lead.objects.unscoped()
        .filter(organization_id=organization_id, duplicate_of__isnull=True, **{field: address})
        .select_related("stage", "organization")
        .order_by("-received_at", "-id")
        .first()
    )


def conversation_for(*, organization, channel: str, address: str, lead=None, contact_name: str = "") -> Conversation:
    """The conversation with ``address`` on ``channel``, made the first time (safe against a concurrent first)."""
    found = Conversation.objects.unscoped().filter(organization_id=organization.pk, channel=channel, address=address)
    conversation = found.first()
    if conversation is None:
        try:
            with transaction.atomic():
                conversation = Conversation.objects.unscoped().create(
                    organization_id=organization.pk,
                    channel=channel,
                    address=address,
                    lead=lead,
                    contact_name=(contact_name or (lead.display_name if lead else ""))[:255],
                    assignee_id=lead.owner_id if lead is not None else None,
                )
        except IntegrityError:
            conversation = found.get()
    changed = []
    if lead is not None and conversation.lead_id is None:
        conversation.lead = lead
        changed.append("lead")
        if conversation.assignee_id is None and lead.owner_id:
            conversation.assignee_id = lead.owner_id
            changed.append("assignee")
    if contact_name and not conversation.contact_name:
        conversation.contact_name = contact_name[:255]
        changed.append("contact_name")
    if changed:
        conversation.save(update_fields=changed)
    conversation.organization = organization
    return conversation


def visible_conversations(queryset, *, membership):
    """Agents see the conversations assigned to them and those of their own leads; managers and above see all."""
    if membership is None or membership.has_role(Role.MANAGER):
        return queryset
    user_id = membership.user_id
    return queryset.filter(Q(assignee_id=user_id) | Q(lead__owner_id=user_id))


@transaction.atomic
def conversation_mark_read(*, conversation: Conversation, actor=None) -> Conversation:
    if conversation.unread_count:
        conversation.unread_count = 0
        conversation.save(update_fields=["unread_count"])
        publish_conversation(conversation)
    return conversation


@transaction.atomic
def conversation_mark_unread(*, conversation: Conversation, actor=None) -> Conversation:
    if not conversation.unread_count:
        conversation.unread_count = 1
        conversation.save(update_fields=["unread_count"])
        publish_conversation(conversation)
    return conversation


@transaction.atomic
def conversation_assign(*, conversation: Conversation, assignee, actor=None) -> Conversation:
    """Give the conversation to a member (``None`` unassigns it). The lead keeps its own owner."""
    from leads.services.leads import assignable_membership

    if assignee is not None:
        assignable_membership(organization=conversation.organization, user=assignee)
    if conversation.assignee_id == (assignee.pk if assignee else None):
        return conversation
    conversation.assignee = assignee
    conversation.save(update_fields=["assignee"])
    publish_conversation(conversation)
    return conversation


@transaction.atomic
def conversation_archive(*, conversation: Conversation, actor=None) -> Conversation:
    if conversation.status != ConversationStatus.ARCHIVED:
        conversation.status = ConversationStatus.ARCHIVED
        conversation.unread_count = 0
        conversation.save(update_fields=["status", "unread_count"])
        publish_conversation(conversation)
    return conversation


@transaction.atomic
def conversation_reopen(*, conversation: Conversation, actor=None) -> Conversation:
    if conversation.status != ConversationStatus.OPEN:
        conversation.status = ConversationStatus.OPEN
        conversation.save(update_fields=["status"])
        publish_conversation(conversation)
    return conversation


def conversation_require_lead_visible(*, conversation: Conversation, membership) -> None:
    if not visible_conversations(Conversation.objects.filter(pk=conversation.pk), membership=membership).exists():
        raise ServiceError("No such conversation.", field="conversation")
