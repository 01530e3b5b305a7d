"""Reads of support tickets, through the scoped managers (the page middleware or the API sets the scope)."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from accounts.constants import Role
from accounts.models import Membership

from .models import SupportTicket, TicketMessage


def tickets_visible_to(
    membership: Membership, queryset: QuerySet[SupportTicket] | None = None
) -> QuerySet[SupportTicket]:
    """Admins and owners see every ticket of the organization; other members the ones they opened."""
    queryset = SupportTicket.objects.all() if queryset is None else queryset
    if not membership.has_role(Role.ADMIN):
        queryset = queryset.filter(opened_by=membership.user)
    # An aggregate drops Meta.ordering (GROUP BY): the order is given again.
    return (
        queryset.select_related("opened_by")
        .annotate(message_count=Count("messages"))
        .order_by("-last_message_at", "-id")
    )


def ticket_thread(ticket: SupportTicket) -> QuerySet[TicketMessage]:
    return TicketMessage.objects.filter(ticket=ticket).select_related("author").order_by("created_at", "id")
