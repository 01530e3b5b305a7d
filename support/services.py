"""Writes for support tickets. Customers open and answer tickets from the app; staff answer from the admin.

Each function owns its side effects: the audit entry, the email to the other side after commit, and a live event
to the customer when staff answered. The ticket row is locked for every change, so two replies at once keep the
thread and the status consistent.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.services import audit_record
from leadflow.exceptions import PermissionDeniedError, ServiceError
from leadflow.realtime import publish_to_user

from .constants import BODY_MAX_LENGTH, SUBJECT_MAX_LENGTH, TicketCategory, TicketStatus
from .models import SupportTicket, TicketMessage


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ServiceError("Write a message.", field="body")
    if len(body) > BODY_MAX_LENGTH:
        raise ServiceError(f"Keep a message under {BODY_MAX_LENGTH:,} characters.", field="body")
    return body


def _locked(ticket: SupportTicket) -> SupportTicket:
    return (
        SupportTicket.objects.unscoped()
        .select_for_update(of=("self",))
        .select_related("organization", "opened_by")
        .get(pk=ticket.pk)
    )


def _add_message(ticket: SupportTicket, *, author: User, body: str, from_staff: bool) -> TicketMessage:
    now = timezone.now()
    message = TicketMessage.objects.unscoped().create(
        organization=ticket.organization, ticket=ticket, author=author, from_staff=from_staff, body=body, created_at=now
    )
    ticket.last_message_at = now
    return message


def _set_status(ticket: SupportTicket, status: str) -> str:
    previous = ticket.status
    ticket.status = status
    ticket.closed_at = (ticket.closed_at or timezone.now()) if status == TicketStatus.CLOSED else None
    return previous


def _notify_staff_on_commit(message: TicketMessage) -> None:
    from .tasks import send_staff_notice

    transaction.on_commit(lambda: send_staff_notice.delay(message.pk))


def _notify_customer_on_commit(ticket: SupportTicket, *, message: TicketMessage | None, event: str) -> None:
    """Email the member who opened the ticket, and show it live on their open pages."""
    from .tasks import send_customer_notice

    message_id = message.pk if message is not None else None
    transaction.on_commit(lambda: send_customer_notice.delay(ticket.pk, message_id))
    if ticket.opened_by_id:
        publish_to_user(
            ticket.opened_by,
            event,
            {"id": ticket.pk, "title": ticket.subject, "status": ticket.status, "message_id": message_id},
        )


@transaction.atomic
def ticket_open(
    *,
    organization: Organization,
    author: User,
    subject: str,
    body: str,
    category: str = TicketCategory.QUESTION,
    request=None,
) -> SupportTicket:
    subject = (subject or "").strip()
    if not subject:
        raise ServiceError("Say in a few words what it is about.", field="subject")
    if len(subject) > SUBJECT_MAX_LENGTH:
        raise ServiceError(f"Keep the subject under {SUBJECT_MAX_LENGTH} characters.", field="subject")
    if category not in TicketCategory.values:
        raise ServiceError(f"“{category}” is not a category.", field="category")
    body = _clean_body(body)
    if not Membership.objects.unscoped().filter(organization=organization, user=author).exists():
        raise PermissionDeniedError("Only members of the organization can open its tickets.")
    ticket = SupportTicket.objects.unscoped().create(
        organization=organization, subject=subject, category=category, opened_by=author
    )
    message = _add_message(ticket, author=author, body=body, from_staff=False)
    ticket.save(update_fields=["last_message_at"])
    audit_record(
        organization=organization,
        action="support.ticket_opened",
        actor=author,
        target=ticket,
        changes={"category": category},
        request=request,
    )
    _notify_staff_on_commit(message)
    return ticket


@transaction.atomic
def ticket_reply_by_member(*, ticket: SupportTicket, author: User, body: str, request=None) -> TicketMessage:
    """The customer's answer: the ticket is the support team's turn again (a closed one reopens)."""
    body = _clean_body(body)
    ticket = _locked(ticket)
    if not Membership.objects.unscoped().filter(organization_id=ticket.organization_id, user=author).exists():
        raise PermissionDeniedError("Only members of the organization can answer its tickets.")
    message = _add_message(ticket, author=author, body=body, from_staff=False)
    previous = _set_status(ticket, TicketStatus.OPEN)
    ticket.save(update_fields=["last_message_at", "status", "closed_at"])
    if previous == TicketStatus.CLOSED:
        audit_record(
            organization=ticket.organization,
            action="support.ticket_reopened",
            actor=author,
            target=ticket,
            changes={"status": [previous, ticket.status]},
            request=request,
        )
    _notify_staff_on_commit(message)
    return message


@transaction.atomic
def ticket_reply_by_staff(
    *, ticket: SupportTicket, staff: User, body: str, status: str = TicketStatus.PENDING, request=None
) -> TicketMessage:
    """Support's answer, from the admin: the customer's turn (``pending``) unless staff closes it with the answer."""
    if not staff.is_staff:
        raise PermissionDeniedError("Only LeadFlow staff answer as support.")
    if status not in (TicketStatus.PENDING, TicketStatus.CLOSED, TicketStatus.OPEN):
        raise ServiceError(f"“{status}” is not a ticket status.", field="status")
    body = _clean_body(body)
    ticket = _locked(ticket)
    message = _add_message(ticket, author=staff, body=body, from_staff=True)
    previous = _set_status(ticket, status)
    ticket.save(update_fields=["last_message_at", "status", "closed_at"])
    audit_record(
        organization=ticket.organization,
        action="support.staff_replied",
        actor=staff,
        target=ticket,
        changes={"status": [previous, ticket.status]},
        request=request,
    )
    _notify_customer_on_commit(ticket, message=message, event="support.reply")
    return message


@transaction.atomic
def ticket_set_status(*, ticket: SupportTicket, status: str, actor: User, request=None) -> SupportTicket:
    """Close or reopen without a message. Members may close and reopen their organization's tickets; staff may set
    any status (closing tells the customer)."""
    if status not in TicketStatus.values:
        raise ServiceError(f"“{status}” is not a ticket status.", field="status")
    ticket = _locked(ticket)
    is_member = Membership.objects.unscoped().filter(organization_id=ticket.organization_id, user=actor).exists()
    if not (actor.is_staff or is_member):
        raise PermissionDeniedError("Only members of the organization or LeadFlow staff can change this ticket.")
    if not actor.is_staff and status == TicketStatus.PENDING:
        raise ServiceError("Reply to the ticket instead.", field="status")
    if ticket.status == status:
        return ticket
    previous = _set_status(ticket, status)
    ticket.save(update_fields=["status", "closed_at"])
    audit_record(
        organization=ticket.organization,
        action="support.ticket_closed" if status == TicketStatus.CLOSED else "support.ticket_status_changed",
        actor=actor,
        target=ticket,
        changes={"status": [previous, status], "by_staff": bool(actor.is_staff and not is_member)},
        request=request,
    )
    if actor.is_staff and not is_member and status == TicketStatus.CLOSED:
        _notify_customer_on_commit(ticket, message=None, event="support.ticket_closed")
    return ticket
