"""Provider events, recorded once and applied in a task.

Every confirmation — a Razorpay webhook (verified in ``billing.api.webhooks``), a Stripe webhook (verified and
stored by dj-stripe, handed over by ``billing.stripe_receivers``) or the offline checkout's "Pay" — becomes one
``BillingEvent`` under a unique (provider, event id): a re-delivery finds it and does nothing. After commit a
task applies it with the provider's handler; handlers lock what they change and check its state, so applying the
same event again (the admin's replay, the sweep of failed ones) changes nothing twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import BillingEvent, BillingEventStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
STUCK_AFTER = timedelta(minutes=5)


def unix_time(value) -> datetime | None:
    if value in (None, "", 0):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def billing_event_record(
    *, provider: str, event_id: str, event_type: str, payload: dict, occurred_at: datetime | None
) -> tuple[BillingEvent, bool]:
    """Store the event once; queue its processing after commit. Returns (event, created)."""
    try:
        with transaction.atomic():
            event = BillingEvent.objects.unscoped().create(
                provider=provider,
                event_id=event_id[:128],
                event_type=event_type[:64],
                payload=payload,
                occurred_at=occurred_at or timezone.now(),
            )
    except IntegrityError:
        return BillingEvent.objects.unscoped().get(provider=provider, event_id=event_id[:128]), False
    transaction.on_commit(lambda: _queue(event.pk))
    return event, True


def _queue(event_pk: int) -> None:
    from .tasks import process_billing_event

    process_billing_event.delay(event_pk)


def _handler(provider: str):
    from .webhooks import offline, razorpay, stripe

    return {"offline": offline.handle, "razorpay": razorpay.handle, "stripe": stripe.handle}[provider]


def billing_event_process(*, event_pk: int, force: bool = False) -> BillingEvent | None:
    """Apply one event (once, unless ``force``: the admin's replay). A failure is kept on the row for the sweep."""
    with transaction.atomic():
        event = BillingEvent.objects.unscoped().select_for_update().filter(pk=event_pk).first()
        if event is None or (event.status in (BillingEventStatus.PROCESSED, BillingEventStatus.IGNORED) and not force):
            return event
        event.attempts += 1
        try:
            with transaction.atomic():
                outcome = _handler(event.provider)(event)
        except Exception as error:
            logger.exception("billing event %s (%s %s) failed", event.pk, event.provider, event.event_type)
            event.status = BillingEventStatus.FAILED
            event.result = f"{type(error).__name__}: {error}"[:255]
        else:
            event.status = BillingEventStatus.PROCESSED if outcome.applied else BillingEventStatus.IGNORED
            event.result = outcome.message[:255]
            event.organization_id = outcome.organization_id or event.organization_id
            event.processed_at = timezone.now()
        event.save()
        return event


def billing_events_sweep(*, now: datetime | None = None) -> int:
    """Apply what is still due: failed events (up to MAX_ATTEMPTS tries) and events recorded more than
    STUCK_AFTER ago whose task never ran (broker down, worker lost)."""
    now = now or timezone.now()
    due = (
        BillingEvent.objects.unscoped()
        .filter(
            Q(status=BillingEventStatus.FAILED, attempts__lt=MAX_ATTEMPTS)
            | Q(status=BillingEventStatus.RECEIVED, received_at__lt=now - STUCK_AFTER)
        )
        .order_by("occurred_at", "pk")
        .values_list("pk", flat=True)[:200]
    )
    ids = list(due)
    for pk in ids:
        billing_event_process(event_pk=pk)
    return len(ids)
