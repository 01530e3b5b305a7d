"""Support emails: staff hear about new tickets and customers' answers; customers about staff answers.

Staff are reached at ``SUPPORT_EMAIL`` (a shared inbox or helpdesk address) when it is set, otherwise at every
active staff account's address.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.constants import Role
from accounts.models import Membership, User

from .models import SupportTicket, TicketMessage


def staff_recipients() -> list[str]:
    if settings.SUPPORT_EMAIL:
        return [settings.SUPPORT_EMAIL]
    return list(User.objects.filter(is_staff=True, is_active=True).order_by("pk").values_list("email", flat=True))


def customer_recipients(ticket: SupportTicket) -> list[str]:
    """Whoever opened the ticket; the organization's owners when that member has left."""
    opener = ticket.opened_by
    if (
        opener is not None
        and opener.is_active
        and Membership.objects.unscoped().filter(organization_id=ticket.organization_id, user=opener).exists()
    ):
        return [opener.email]
    return list(
        Membership.objects.unscoped()
        .filter(organization_id=ticket.organization_id, role=Role.OWNER, user__is_active=True)
        .order_by("pk")
        .values_list("user__email", flat=True)
    )


def _send(*, to: list[str], subject: str, template: str, context: dict) -> int:
    if not to:
        return 0
    context = {**context, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"support/email/{template}.txt", context), to=to
    )
    message.attach_alternative(render_to_string(f"support/email/{template}.html", context), "text/html")
    message.send()
    return len(to)


def staff_notice_send(*, message: TicketMessage) -> int:
    ticket = message.ticket
    first = not TicketMessage.objects.unscoped().filter(ticket=ticket, created_at__lt=message.created_at).exists()
    return _send(
        to=staff_recipients(),
        subject=f"[Support #{ticket.pk}] {'New ticket' if first else 'Reply'}: {ticket.subject} ({ticket.organization.name})",
        template="staff_notice",
        context={
            "ticket": ticket,
            "message": message,
            "first": first,
            "admin_url": settings.SITE_URL + reverse("admin:support_supportticket_change", args=[ticket.pk]),
        },
    )


def customer_notice_send(*, ticket: SupportTicket, message: TicketMessage | None) -> int:
    return _send(
        to=customer_recipients(ticket),
        subject=f"[LeadFlow support #{ticket.pk}] {'New reply' if message else 'Ticket closed'}: {ticket.subject}",
        template="customer_notice",
        context={
            "ticket": ticket,
            "message": message,
            "ticket_url": settings.SITE_URL + reverse("support:detail", args=[ticket.pk]),
        },
    )
