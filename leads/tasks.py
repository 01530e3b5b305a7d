from __future__ import annotations

import logging

from celery import shared_task
from django.core.mail import send_mail
from django.utils import timezone

from accounts.models import Organization, User
from leadflow.celery import PRIORITY_BULK
from leadflow.tenancy.context import organization_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def handle_outbox_events(organization_id: int, topic: str) -> int:
    from .services.outbox import outbox_handle_pending

    return outbox_handle_pending(organization_id, topic)


@shared_task(acks_late=True)
def handle_outbox_event(event_id: int) -> bool:
    """One event by id (tasks queued before events were batched per organization still name one)."""
    from .services.outbox import outbox_handle

    return outbox_handle(event_id)


@shared_task
def sweep_outbox() -> int:
    from .services.outbox import outbox_sweep

    return outbox_sweep()


@shared_task
def prune_outbox() -> int:
    from .services.outbox import outbox_prune

    return outbox_prune()


@shared_task
def drain_assignment_queue(organization_id: int) -> int:
    from .services.assignment import assignment_drain_queue

    organization = Organization.objects.filter(pk=organization_id, is_active=True).first()
    return assignment_drain_queue(organization) if organization else 0


@shared_task
def drain_all_assignment_queues() -> int:
    from .constants import AssignmentStrategy

    ids = (
        Organization.objects.filter(is_active=True)
        .exclude(assignment_strategy=AssignmentStrategy.MANUAL)
        .values_list("pk", flat=True)
    )
    return sum(drain_assignment_queue(pk) for pk in ids)


@shared_task(priority=PRIORITY_BULK)
def rescore_recent_leads(days: int = 8) -> int:
    """Recency points fade: rescore the leads young enough for them to have changed."""
    from .services.rescoring import leads_rescore

    return leads_rescore(since=timezone.now() - timezone.timedelta(days=days))


@shared_task
def retry_stuck_submissions() -> int:
    """Submissions left ``received`` (a crash between storing and processing) or ``failed`` get another go."""
    from .constants import SubmissionStatus
    from .intake.pipeline import submissions_reprocess

    cutoff = timezone.now() - timezone.timedelta(minutes=5)
    return sum(
        1
        for status in (SubmissionStatus.RECEIVED, SubmissionStatus.FAILED)
        for _ in submissions_reprocess(status=status, until=cutoff, limit=500)
    )


@shared_task(priority=PRIORITY_BULK)
def run_lead_import(import_id: int) -> None:
    from .services.imports import lead_import_run

    lead_import_run(import_id)


@shared_task
def send_quota_alert(organization_id: int, user_ids: list[int], quota: int, month: str) -> None:
    organization = Organization.objects.get(pk=organization_id)
    recipients = list(User.objects.filter(pk__in=user_ids, is_active=True).values_list("email", flat=True))
    if not recipients:
        return
    with organization_scope(organization):
        send_mail(
            subject=f"{organization.name} is over its {quota}-lead monthly quota",
            message=(
                f"Your workspace {organization.name} received more leads in {month[:7]} than the {quota} your plan "
                "includes. Every lead is still stored and shown, flagged as over quota. Upgrade your plan in "
                "Billing to lift the limit."
            ),
            from_email=None,
            recipient_list=recipients,
        )
