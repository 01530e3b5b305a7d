"""Celery tasks of support: thin wrappers that load rows and send the emails."""

from celery import shared_task

from . import emails
from .models import SupportTicket, TicketMessage


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_staff_notice(message_id: int) -> int:
    message = (
        TicketMessage.objects.unscoped().select_related("ticket__organization", "author").filter(pk=message_id).first()
    )
    return emails.staff_notice_send(message=message) if message else 0


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_customer_notice(ticket_id: int, message_id: int | None) -> int:
    ticket = SupportTicket.objects.unscoped().select_related("organization", "opened_by").filter(pk=ticket_id).first()
    if ticket is None:
        return 0
    message = TicketMessage.objects.unscoped().filter(pk=message_id, ticket=ticket).first() if message_id else None
    return emails.customer_notice_send(ticket=ticket, message=message)
