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
from django.utils import timezone

from leadflow.tenancy.context import organization_scope

from ..models import OutboxEvent

logger = logging.getLogger(__name__)

_HANDLERS: dict[str, list[Callable[[OutboxEvent], None]]] = defaultdict(list)
# An event not handled this long after it was written is sent again by the sweep.
SWEEP_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 10


def outbox_handler(topic: str):
    def register(function):
        _HANDLERS[topic].append(function)
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
    """Run the handlers of one event; ``False`` when it was already handled (or is being handled elsewhere)."""
    with transaction.atomic():
        event = (
            OutboxEvent.objects.unscoped()
            .select_for_update(skip_locked=True, of=("self",))  # not the organization row: FK checks need it
            .select_related("organization")
            .filter(pk=event_id, handled_at__isnull=True)
            .first()
        )
        if event is None:
            return False
        event.attempts += 1
        try:
            with transaction.atomic(), organization_scope(event.organization):
                for handler in _HANDLERS.get(event.topic, []):
                    handler(event)
        except Exception as error:
            event.last_error = f"{type(error).__name__}: {error}"[:2000]
            event.save(update_fields=["attempts", "last_error"])
            logger.exception("outbox event %s (%s) failed", event.pk, event.topic)
            return False
        event.handled_at = timezone.now()
        event.last_error = ""
        event.save(update_fields=["attempts", "handled_at", "last_error"])
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
