"""The transactional outbox: events written with the change, handed to Celery on commit, swept by beat.

``outbox_publish`` must be called inside the transaction that makes the change. Handlers registered with
``@outbox_handler("topic")`` run in the worker, once per event, inside a transaction that also marks the event
handled: a redelivered task finds it handled and does nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leadflow.tenancy.context import organization_scope

from ..models import OutboxEvent

logger = logging.getLogger(__name__)

_HANDLERS: dict[str, list[Callable[[OutboxEvent], None]]] = defaultdict(list)
_BATCH_HANDLERS: dict[str, list[Callable[[list[OutboxEvent]], None]]] = defaultdict(list)
# A worker that picks up one event takes along the organization's other pending events of that topic, so a burst
# of leads is scored, counted and announced in a few queries instead of a few per lead.
BATCH_SIZE = 100
# An event not handled this long after it was written is sent again by the sweep.
SWEEP_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 10


def outbox_handler(topic: str):
    def register(function):
        _HANDLERS[topic].append(function)
        return function

    return register


def outbox_batch_handler(topic: str):
    """Register a handler that takes a list of events of ``topic`` (all of one organization)."""

    def register(function):
        _BATCH_HANDLERS[topic].append(function)
        return function

    return register


def outbox_publish(*, organization, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    event = OutboxEvent.objects.create(organization=organization, topic=topic, payload=payload)
    transaction.on_commit(lambda: _enqueue(event.pk))
    return event


def _enqueue(event_id: int) -> None:
    from ..tasks import handle_outbox_event

    try:
        handle_outbox_event.delay(event_id)
    except Exception:  # The broker is down: the event stays in the table and the sweep sends it later.
        logger.warning("outbox event %s could not be queued; the sweep will retry it", event_id, exc_info=True)


def outbox_handle(event_id: int) -> bool:
    """Run the handlers of an event (and of its organization's other pending events of the same topic).

    ``False`` when it was already handled, is being handled elsewhere, or its handlers failed (it stays pending
    for the sweep).
    """
    with transaction.atomic():
        pending = (
            OutboxEvent.objects.unscoped()
            .select_for_update(skip_locked=True, of=("self",))
            .filter(handled_at__isnull=True)
        )
        first = pending.select_related("organization").filter(pk=event_id).first()
        if first is None:
            return False
        others = pending.filter(
            organization_id=first.organization_id, topic=first.topic, attempts__lt=MAX_ATTEMPTS
        ).exclude(pk=first.pk)
        events = [first, *others.order_by("created_at", "id")[: BATCH_SIZE - 1]]
        ids = [event.pk for event in events]
        try:
            with transaction.atomic(), organization_scope(first.organization):
                for batch_handler in _BATCH_HANDLERS.get(first.topic, []):
                    batch_handler(events)
                for handler in _HANDLERS.get(first.topic, []):
                    for event in events:
                        handler(event)
        except Exception as error:
            OutboxEvent.objects.unscoped().filter(pk__in=ids).update(
                attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000]
            )
            logger.exception("outbox events %s (%s) failed", ids, first.topic)
            return False
        OutboxEvent.objects.unscoped().filter(pk__in=ids).update(
            handled_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
        )
        return True


def outbox_sweep(*, older_than: timedelta = SWEEP_AFTER, limit: int = 1000) -> int:
    """Queue again every event that should have been handled by now. Returns how many were queued."""
    cutoff = timezone.now() - older_than
    ids = list(
        OutboxEvent.objects.unscoped()
        .filter(handled_at__isnull=True, created_at__lt=cutoff, attempts__lt=MAX_ATTEMPTS)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in ids:
        _enqueue(event_id)
    return len(ids)
