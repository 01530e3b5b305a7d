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
import copy
import logging
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import redis
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from leadflow.caching import ProcessCache
from leadflow.redis import redis_client, redis_key
from leadflow.tenancy.context import organization_scope
from leadflow.wakeups import wake

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
    if _handled_in_process.get():
        transaction.on_commit(lambda: _handle_now(organization_id, topic))
    else:
        transaction.on_commit(
            lambda: wake(("outbox", organization_id, topic), lambda: _wake_up(organization_id, topic))
        )


# Set inside a worker task that writes events: they are handled by that process right after they commit.
_handled_in_process: ContextVar[bool] = ContextVar("outbox_handled_in_process", default=False)


@contextmanager
def outbox_handled_in_process(enabled: bool = True):
    """For a worker task that creates a lead (a Facebook lead's fetch): the events committed inside are handled by
    this process as soon as they commit, instead of by a task queued for them — one trip through the broker fewer
    between a lead's arrival and its webhooks. Handled the same way, with the same locks; a failure leaves them to a
    task and the sweep. Only when the task was not kept waiting (``enabled``): behind a backlog the queued task
    batches many leads' events at once, which costs far less per lead than one handling each. Never in a web
    request, whose answer must not wait for the handlers."""
    token = _handled_in_process.set(enabled)
    try:
        yield
    finally:
        _handled_in_process.reset(token)


def outbox_handling_in_process() -> bool:
    """Whether this code runs inside ``outbox_handled_in_process(enabled=True)``: a worker that kept up, where the
    handlers may do their own follow-up (a first webhook delivery) in process too."""
    return _handled_in_process.get()


def _handle_now(organization_id: int, topic: str) -> None:
    try:
        outbox_handle_pending(organization_id, topic)
    except Exception:
        logger.exception("outbox %s/%s could not be handled in process; queuing a task", organization_id, topic)
        _wake_up(organization_id, topic)


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
    organization = _organization(organization_id)
    if organization is None:
        return 0
    handled = 0
    for _ in range(BATCHES_PER_TASK):
        count = _handle_batch(organization, topic, lambda: _lock_pending(organization_id, topic, BATCH_SIZE))
        handled += count
        if count < BATCH_SIZE:  # that was the last of them (or they failed, or another worker has them)
            return handled
    _enqueue(organization_id, topic)  # more than a task's share: the rest in a task of its own
    return handled


# Read for every batch: an organization's row changes rarely, and handlers only read it.
_organizations: ProcessCache[Organization] = ProcessCache(seconds=10)


def _organization(organization_id: int) -> Organization | None:
    cached = _organizations.get(organization_id, lambda: Organization.objects.filter(pk=organization_id).first())
    return copy.copy(cached) if cached is not None else None


def outbox_organizations_forget() -> None:
    _organizations.forget()


def outbox_handle(event_id: int) -> bool:
    """Run the handlers of an event (and of its organization's other pending events of the same topic).

    ``False`` when it was already handled, is being handled elsewhere, or its handlers failed (it stays pending
    for the sweep).
    """
    event = OutboxEvent.objects.unscoped().select_related("organization").filter(pk=event_id).first()
    if event is None or event.handled_at is not None:
        return False

    def batch():
        first = list(
            OutboxEvent.objects.unscoped()
            .select_for_update(skip_locked=True, of=("self",))
            .filter(pk=event_id, handled_at__isnull=True)
        )
        if not first:
            return []
        others = _lock_pending(event.organization_id, event.topic, BATCH_SIZE - 1, excluding=event_id)
        return first + others

    return _handle_batch(event.organization, event.topic, batch) > 0


# The oldest pending events of one organization and topic, locked; SKIP LOCKED leaves those another worker is
# handling to it. Written out: this runs for every batch, and the ORM spent longer building it than PostgreSQL
# spends answering it (it reads ``leads_outbox_org_pending_idx``).
_LOCK_PENDING_SQL = f"""
SELECT * FROM {OutboxEvent._meta.db_table}
 WHERE organization_id = %(organization)s AND topic = %(topic)s AND handled_at IS NULL AND attempts < %(max_attempts)s
   AND id <> %(excluding)s
 ORDER BY created_at, id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
"""  # noqa: S608 - the table name comes from the model; every value is bound


def _lock_pending(organization_id: int, topic: str, limit: int, *, excluding: int = 0) -> list[OutboxEvent]:
    params = {
        "organization": organization_id,
        "topic": topic,
        "max_attempts": MAX_ATTEMPTS,
        "excluding": excluding,
        "limit": limit,
    }
    return list(OutboxEvent.objects.unscoped().raw(_LOCK_PENDING_SQL, params))


def _handle_batch(organization, topic: str, lock_events) -> int:
    """Lock events (``lock_events()``, inside the transaction), run their handlers and mark them handled, all in one
    transaction. Returns how many were handled: 0 when there were none or the handlers failed.

    When a batch fails, its events are handled again one at a time, so one event its handlers cannot take (a lead
    deleted halfway, a bug) fails alone instead of holding back every later event of the organization.
    """
    with transaction.atomic():
        events = EventBatch(lock_events())
        if not events:
            return 0
        for event in events:
            event.organization = organization  # one organization for the batch, not one load per event
        try:
            _run_handlers(organization, topic, events)
        except Exception as error:
            if len(events) == 1:
                _record_failure(events, error)
                return 0
            logger.warning("outbox batch of %d %s events failed; handling them one at a time", len(events), topic)
            handled = []
            for event in events:
                try:
                    _run_handlers(organization, topic, EventBatch([event]))
                except Exception as single_error:
                    _record_failure([event], single_error)
                else:
                    handled.append(event)
            _mark_handled(handled)
            return len(handled)
        _mark_handled(events)
        return len(events)


def _run_handlers(organization, topic: str, events: EventBatch) -> None:
    """In a savepoint: a failing handler undoes what the batch's handlers wrote (and their after-commit work)."""
    with transaction.atomic(), organization_scope(organization):
        for batch_handler in _BATCH_HANDLERS.get(topic, []):
            batch_handler(events)
        for handler in _HANDLERS.get(topic, []):
            for event in events:
                handler(event)


_MARK_HANDLED_SQL = f"""
UPDATE {OutboxEvent._meta.db_table}
   SET handled_at = %(now)s, attempts = attempts + 1, last_error = ''
 WHERE id = ANY(%(ids)s)
"""  # noqa: S608


def _mark_handled(events: list[OutboxEvent]) -> None:
    if events:
        with connection.cursor() as cursor:
            cursor.execute(_MARK_HANDLED_SQL, {"now": timezone.now(), "ids": [event.pk for event in events]})


def _record_failure(events: list[OutboxEvent], error: Exception) -> None:
    ids = [event.pk for event in events]
    OutboxEvent.objects.unscoped().filter(pk__in=ids).update(
        attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000]
    )
    logger.error("outbox events %s failed", ids, exc_info=error)


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


# Handled events are kept this long (to see what happened to a lead's events), then deleted by beat.
HANDLED_KEPT_FOR = timedelta(days=7)


def outbox_prune(*, older_than: timedelta = HANDLED_KEPT_FOR, batch: int = 10_000) -> int:
    """Delete events handled more than ``older_than`` ago, a batch at a time. Returns how many were deleted."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            OutboxEvent.objects.unscoped()
            .filter(handled_at__lt=cutoff)
            .order_by("handled_at")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += OutboxEvent.objects.unscoped().filter(pk__in=ids)._raw_delete(OutboxEvent.objects.db)
