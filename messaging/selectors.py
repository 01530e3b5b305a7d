"""Reads of the messaging app, through the scoped managers."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, QuerySet, Sum

from .models import UsagePricing, UsageRecord


def usage_records(*, since: datetime | None = None, until: datetime | None = None) -> QuerySet[UsageRecord]:
    queryset = UsageRecord.objects.order_by("-created_at", "-id")
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset


USAGE_TOTALS = {
    "count": Count("id"),
    "quantity": Sum("quantity"),
    "cost": Sum("provider_cost"),
    "billable": Sum("billable_amount"),
}


def usage_summary(*, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Per channel and currency: how many sends, what they cost us and what is billable."""
    rows = (
        usage_records(since=since, until=until)
        .order_by()
        .values("channel", "currency")
        .annotate(**USAGE_TOTALS)
        .order_by("channel", "currency")
    )
    return list(rows)


def usage_pricing(organization) -> UsagePricing | None:
    return UsagePricing.objects.filter(organization=organization).first()


# Conversations -------------------------------------------------------------------------------------------------------

INBOX_FILTERS = ("mine", "unassigned", "unread", "archived")


def inbox_conversations(*, membership, view: str = "", channel: str = "", q: str = "") -> QuerySet:
    """The inbox list a member sees: open conversations (or archived ones), newest first, narrowed by a view
    (mine, unassigned, unread) and a channel."""
    from .constants import ConversationStatus
    from .models import Conversation
    from .services.conversations import visible_conversations

    queryset = visible_conversations(Conversation.objects.all(), membership=membership)
    queryset = queryset.filter(status=ConversationStatus.ARCHIVED if view == "archived" else ConversationStatus.OPEN)
    if view == "mine":
        queryset = queryset.filter(assignee_id=membership.user_id)
    elif view == "unassigned":
        queryset = queryset.filter(assignee__isnull=True)
    elif view == "unread":
        queryset = queryset.filter(unread_count__gt=0)
    if channel:
        queryset = queryset.filter(channel=channel)
    if q:
        from django.db.models import Q

        queryset = queryset.filter(Q(contact_name__icontains=q) | Q(address__icontains=q))
    return queryset.select_related("lead", "assignee").order_by("-last_message_at", "-id")


def inbox_unread_total(*, membership) -> int:
    """Conversations with unread messages the member can see (the nav badge)."""
    from .constants import ConversationStatus
    from .models import Conversation
    from .services.conversations import visible_conversations

    return (
        visible_conversations(Conversation.objects.all(), membership=membership)
        .filter(status=ConversationStatus.OPEN, unread_count__gt=0)
        .count()
    )


def thread_messages(conversation, *, limit: int = 200) -> list:
    from .models import Message

    rows = list(
        Message.objects.filter(conversation=conversation)
        .select_related("sent_by", "template")
        .order_by("-created_at", "-id")[:limit]
    )
    rows.reverse()
    return rows


def template_stats(templates) -> dict:
    """Per template and variant (None is the template's own body): sent, delivered, replied and the rates."""
    from .constants import Direction, MessageStatus
    from .models import Message

    rows = (
        Message.objects.filter(template__in=list(templates), direction=Direction.OUTBOUND)
        .values("template_id", "template_variant_id")
        .annotate(
            # Handed to the provider (Twilio's "queued" included), failed ones only if a provider took them.
            sent=Count("id", filter=models_q(submitted_at__isnull=False)),
            delivered=Count("id", filter=models_q(status__in=[MessageStatus.DELIVERED, MessageStatus.READ])),
            replied=Count("id", filter=models_q(replied_at__isnull=False)),
            total=Count("id"),
        )
    )
    stats = {}
    for row in rows:
        sent = row["sent"]
        row["delivery_rate"] = round(100 * row["delivered"] / sent, 1) if sent else None
        row["reply_rate"] = round(100 * row["replied"] / sent, 1) if sent else None
        stats[(row["template_id"], row["template_variant_id"])] = row
    return stats


def models_q(**kwargs):
    from django.db.models import Q

    return Q(**kwargs)
