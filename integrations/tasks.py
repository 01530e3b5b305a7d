"""Celery tasks of the integrations app: thin wrappers over its services."""

from __future__ import annotations

import time

from celery import shared_task

from leadflow.celery import PRIORITY_BULK

# Outbound webhooks -------------------------------------------------------------------------------------------------


@shared_task(acks_late=True)
def send_webhook_delivery(delivery_id: int) -> bool:
    """Attempt one delivery if it is due; running twice, or late, is harmless (the service locks and checks)."""
    from .services.webhooks import webhook_delivery_attempt

    return webhook_delivery_attempt(delivery_id=delivery_id) is not None


@shared_task(acks_late=True)
def send_webhook_deliveries(delivery_ids: list[int]) -> int:
    """First attempts of a few deliveries, one after the other (see ``DELIVERIES_PER_TASK``)."""
    from .services.webhooks import webhook_delivery_attempt

    return sum(webhook_delivery_attempt(delivery_id=delivery_id) is not None for delivery_id in delivery_ids)


@shared_task
def send_due_webhook_deliveries() -> int:
    from .services.webhooks import webhook_deliveries_send_due

    return webhook_deliveries_send_due()


@shared_task
def notify_webhook_endpoint_disabled(endpoint_id: int) -> None:
    from .emails import webhook_endpoint_disabled_email_send

    webhook_endpoint_disabled_email_send(endpoint_id=endpoint_id)


# Inbound connections -----------------------------------------------------------------------------------------------


@shared_task
def notify_connection_error(connection_id: int) -> None:
    from .services.connections import connection_error_email_send

    connection_error_email_send(connection_id=connection_id)


# A fetch picked up this soon after it was queued finds no backlog: it handles its lead's events itself.
HANDLE_HERE_WITHIN_S = 0.05


@shared_task(acks_late=True)
def fetch_facebook_lead(submission_id: int, attempt: int = 0, queued_at: float | None = None) -> str:
    """Fetch one notified lead from the Graph API and run it through the intake. A failure that may pass is tried
    again after ``FACEBOOK_FETCH_RETRY_DELAYS[attempt]``; after the last, the submission is left failed (replayable).

    The next try is a new task carrying its attempt number rather than ``self.retry``: running it twice is harmless
    (the service skips a submission that made its lead), and eager mode (development) runs the same schedule.
    ``queued_at`` (the sender's clock) tells whether the worker kept up: see ``outbox_handled_in_process``.
    """
    from leads.services.outbox import outbox_handled_in_process

    from .services.inbound import facebook_submission_fetch_and_process

    kept_up = queued_at is not None and time.time() - queued_at <= HANDLE_HERE_WITHIN_S
    with outbox_handled_in_process(enabled=kept_up):
        result = facebook_submission_fetch_and_process(submission_id=submission_id, attempt=attempt)
    if result.retry_in is not None:
        fetch_facebook_lead.apply_async(
            args=[submission_id], kwargs={"attempt": attempt + 1}, countdown=result.retry_in.total_seconds()
        )
    return result.status


@shared_task(priority=PRIORITY_BULK)
def sync_facebook_leads() -> int:
    """Beat: pull every connected page's leads created since its last sync (what Meta failed to notify)."""
    from .services.inbound import facebook_connections_sync

    return facebook_connections_sync()


@shared_task(priority=PRIORITY_BULK)
def sync_linkedin_leads() -> int:
    """Beat: pull every LinkedIn connection's form responses submitted since its last sync."""
    from .services.inbound import linkedin_connections_sync

    return linkedin_connections_sync()


# Meta's Conversions API for CRM --------------------------------------------------------------------------------------


@shared_task(acks_late=True)
def send_conversion_event(conversion_event_id: int) -> bool:
    """Send one lead stage to Meta if it is due; running twice, or late, is harmless (the service locks and checks)."""
    from .services.conversions import conversion_event_attempt

    return conversion_event_attempt(conversion_event_id=conversion_event_id) is not None


@shared_task
def send_due_conversion_events() -> int:
    """Beat: stages whose retry is due, and any whose task was lost."""
    from .services.conversions import conversion_events_send_due

    return conversion_events_send_due()
