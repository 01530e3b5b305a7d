"""The transactional outbox: events written with the change, handed to Celery on commit, swept by beat.

``outbox_publish`` must be called inside the transaction that makes the change. Handlers registered with
``@outbox_handler("topic")`` run in the worker, once per event, inside a transaction that also marks the event
handled: a redelivered task finds it handled and does nothing.

Celery is woken once per burst, not once per event: on commit, the first event of an organization and topic sets a
short-lived Redis flag and queues ``handle_outbox_events(organization, topic)``; events committed while that flag is
up are left for the task, which clears the flag before it reads the pending events, so none is missed. A burst of
leads costs one task (and one broker message) per batch instead of one per lead. Whatever slips through (the broker
or Redis down) is queued again by the sweep.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from leadflow.redis import redis_client, redis_key
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
# How long a wake-up flag may stand: if its task is lost, events wait at most this long for the next one (or the
# sweep); if the queue is slower than this, a second task is queued for the same events, which is harmless.
WAKE_UP_TTL_S = 5
# Batches one task handles before it hands over to a fresh task (so one busy organization cannot hold a worker).
BATCHES_PER_TASK = 20


class EventBatch(list):
    """One organization's events of one topic, handled together. ``shared`` holds what one handler loaded for the
    batch that the next can use (the events' leads), so each is read once per batch, not once per handler."""

    def __init__(self, events):
        super().__init__(events)
        self.shared: dict[str, Any] = {}


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
    outbox_wake_on_commit(event.organization_id, topic)
    return event


def outbox_wake_on_commit(organization_id: int, topic: str) -> None:
    """For code that writes an outbox row itself (the intake, in bulk): wake the worker when it commits."""
    transaction.on_commit(lambda: _wake_up(organization_id, topic))


def _wake_up_flag(organization_id: int, topic: str) -> str:
    return redis_key(f"outbox-wake:{organization_id}:{topic}")


def _wake_up(organization_id: int, topic: str) -> None:
    """Queue the task for this organization's pending ``topic`` events, unless one is queued and not yet started."""
    client = redis_client()
    flag = _wake_up_flag(organization_id, topic)
    try:
        if client is not None and not client.set(flag, 1, nx=True, ex=WAKE_UP_TTL_S):
            return
    except redis.RedisError:
        logger.warning("no wake-up flag for outbox %s/%s; queuing a task anyway", organization_id, topic)
    _enqueue(organization_id, topic)


def _enqueue(organization_id: int, topic: str) -> None:
    from ..tasks import handle_outbox_events

    try:
        handle_outbox_events.delay(organization_id, topic)
    except Exception:  # The broker is down: the events stay in the table and the sweep sends them later.
        logger.warning("outbox %s/%s could not be queued; the sweep will retry", organization_id, topic, exc_info=True)
        client = redis_client()
        if client is not None:
            with contextlib.suppress(redis.RedisError):
                client.delete(_wake_up_flag(organization_id, topic))


def outbox_handle_pending(organization_id: int, topic: str) -> int:
    """Handle an organization's pending ``topic`` events, a batch at a time. Returns how many were handled."""
    client = redis_client()
    if client is not None:
        # Cleared before reading: an event committed after this point queues a new task itself.
        with contextlib.suppress(redis.RedisError):
            client.delete(_wake_up_flag(organization_id, topic))
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    handled = 0
    pending = _pending(organization_id=organization_id, topic=topic, attempts__lt=MAX_ATTEMPTS)
    oldest_first = pending.order_by("created_at", "id")
    for _ in range(BATCHES_PER_TASK):
        count = _handle_batch(organization, topic, lambda: oldest_first[:BATCH_SIZE])
        handled += count
        if count < BATCH_SIZE:  # that was the last of them (or they failed, or another worker has them)
            return handled
    _enqueue(organization_id, topic)  # more than a task's share: the rest in a task of its own
    return handled


def outbox_handle(event_id: int) -> bool:
    """Run the handlers of an event (and of its organization's other pending events of the same topic).

    ``False`` when it was already handled, is being handled elsewhere, or its handlers failed (it stays pending
    for the sweep).
    """
    event = OutboxEvent.objects.unscoped().select_related("organization").filter(pk=event_id).first()
    if event is None or event.handled_at is not None:
        return False

    def batch():
        first = list(_pending(pk=event_id))
        if not first:
            return []
        others = _pending(organization_id=event.organization_id, topic=event.topic, attempts__lt=MAX_ATTEMPTS)
        return first + list(others.exclude(pk=event_id).order_by("created_at", "id")[: BATCH_SIZE - 1])

    return _handle_batch(event.organization, event.topic, batch) > 0


def _pending(**filters):
    # SKIP LOCKED: events another worker is handling are left to it.
    return (
        OutboxEvent.objects.unscoped()
        .select_for_update(skip_locked=True, of=("self",))
        .filter(handled_at__isnull=True, **filters)
    )


def _handle_batch(organization, topic: str, lock_events) -> int:
    """Lock events (``lock_events()``, inside the transaction), run their handlers and mark them handled, all in one
    transaction. Returns how many were handled: 0 when there were none or the handlers failed."""
    with transaction.atomic():
        events = EventBatch(lock_events())
        if not events:
            return 0
        for event in events:
            event.organization = organization  # one organization for the batch, not one load per event
        ids = [event.pk for event in events]
        try:
            with transaction.atomic(), organization_scope(organization):
                for batch_handler in _BATCH_HANDLERS.get(topic, []):
                    batch_handler(events)
                for handler in _HANDLERS.get(topic, []):
                    for event in events:
                        handler(event)
        except Exception as error:
            OutboxEvent.objects.unscoped().filter(pk__in=ids).update(
                attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000]
            )
            logger.exception("outbox events %s (%s) failed", ids, topic)
            return 0
        OutboxEvent.objects.unscoped().filter(pk__in=ids).update(
            handled_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
        )
        return len(events)


def outbox_sweep(*, older_than: timedelta = SWEEP_AFTER, limit: int = 1000) -> int:
    """Queue again every organization and topic with events that should have been handled by now.

    Returns how many events that covers."""
    cutoff = timezone.now() - older_than
    stale = (
        OutboxEvent.objects.unscoped()
        .filter(handled_at__isnull=True, created_at__lt=cutoff, attempts__lt=MAX_ATTEMPTS)
        .order_by("created_at")
        .values_list("organization_id", "topic")[:limit]
    )
    batches: dict[tuple[int, str], int] = defaultdict(int)
    for organization_id, topic in stale:
        batches[organization_id, topic] += 1
    for organization_id, topic in batches:
        _enqueue(organization_id, topic)
    return sum(batches.values())
