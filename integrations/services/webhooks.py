"""Outbound webhooks: endpoints, signing, delivery with retries, replay and the circuit breaker.

The machinery is not tied to organization subscriptions: ``webhook_deliver`` signs and posts to any
``WebhookTarget`` (an object with a ``url`` and ``signing_secrets()``), and ``deliveries_enqueue`` fans one message
out to any endpoints, whatever their purpose. The distribution issue's buyer webhooks are endpoints with another
``purpose`` and go through exactly this code.

How a delivery travels: a ``WebhookDelivery`` row per message and endpoint (unique), created in the transaction
that produced the event; after commit a task attempts it. The attempt claims the row under a lock (a lease on
``next_attempt_at``), sends without holding a transaction open, then records a ``WebhookAttempt`` and either marks
the delivery succeeded, schedules the next try (``WEBHOOK_RETRY_DELAYS``, about three days) or gives up. Beat sends
whatever is due and was not queued (long delays, lost tasks), so a task running twice never sends twice.

Circuit breaker (our choice, after Svix's): an endpoint is disabled, and its organization's owners emailed, when
every attempt to it has failed for ``WEBHOOK_DISABLE_AFTER_FAILING_FOR`` (5 days, measured from the first failure
after its last success), or at once when it answers ``410 Gone``. A time rule rather than "N failures in a row"
treats a busy endpoint and a quiet one alike.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leadflow.metrics import webhook_attempt_count
from leadflow.sql import InsertStatement

from ..constants import (
    WEBHOOK_DISABLE_AFTER_FAILING_FOR,
    WEBHOOK_MAX_ATTEMPTS,
    WEBHOOK_MAX_RETRY_AFTER,
    WEBHOOK_RESPONSE_EXCERPT_CHARS,
    WEBHOOK_RETRY_DELAYS,
    WEBHOOK_RETRY_JITTER,
    WEBHOOK_SECRET_BYTES,
    WEBHOOK_SECRET_PREFIX,
    WEBHOOK_TEST_EVENT,
    WebhookAttemptTrigger,
    WebhookDeliveryStatus,
    WebhookEndpointPurpose,
    WebhookEventType,
)
from ..events import webhook_envelope
from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

logger = logging.getLogger(__name__)

# A retry this close is queued with a countdown; later ones are left to the beat sweep, because a broker holds
# long-delayed tasks badly (Redis redelivers them after its visibility timeout, a restart can lose them).
COUNTDOWN_AT_MOST = timedelta(minutes=5)
# While an attempt is in flight its delivery is not due: a second task or the sweep leaves it alone. A worker that
# dies mid-send frees the delivery for the sweep once this passes.
ATTEMPT_LEASE_MARGIN = timedelta(seconds=60)
# A rotated-out secret keeps signing (as a second signature) this long, so receivers can switch without drops.
PREVIOUS_SECRET_VALID_FOR = timedelta(hours=24)
USER_AGENT = "LeadFlow-Webhooks/1.0"


# Secrets and signatures ---------------------------------------------------------------------------------------------


def webhook_secret_generate() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()


def webhook_message_id_generate() -> str:
    return f"msg_{uuid.uuid4().hex}"


def webhook_signature(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the decoded secret (Standard Webhooks)."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, tz=UTC), body)


def webhook_headers(*, secrets: Sequence[str], message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret (two while a rotation is under way)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            webhook_signature(secret=secret, message_id=message_id, timestamp=timestamp, body=body)
            for secret in secrets
        ),
    }


# Sending ------------------------------------------------------------------------------------------------------------


class WebhookTarget(Protocol):
    """Anything LeadFlow can post a signed webhook to."""

    url: str

    def signing_secrets(self) -> list[str]: ...


@dataclass(frozen=True)
class WebhookSendResult:
    status_code: int | None
    latency_ms: int
    response_excerpt: str = ""
    error: str = ""
    retry_after: timedelta | None = None
    # False for answers that another try cannot change: most 4xx, a refused address.
    retryable: bool = True

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _is_retryable_status(status_code: int) -> bool:
    return status_code in (408, 429) or status_code >= 500


def _retry_after(value: str | None) -> timedelta | None:
    """``Retry-After`` as seconds or as an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - timezone.now(), timedelta(0))


def _refused_address(url: str) -> str:
    """Why ``url`` may not be called (it resolves to a private, loopback or otherwise non-public address), or "".

    The check resolves the name before httpx resolves it again, so a DNS answer that changes in between (rebinding)
    slips through; an egress proxy that refuses private ranges is the complete fix in production.
    """
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return ""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return ""  # httpx reports the failure, and it is retried: DNS trouble is often temporary
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return f"{parts.hostname} resolves to the non-public address {address}"
    return ""


_client: httpx.Client | None = None


def _http_client() -> httpx.Client:
    """One pooled client per process: keep-alive to receivers that get many deliveries."""
    global _client
    if _client is None:
        _client = httpx.Client(follow_redirects=False, headers={"user-agent": USER_AGENT})
    return _client


def webhook_deliver(
    *, target: WebhookTarget, message_id: str, body: str, timeout: float | None = None
) -> WebhookSendResult:
    """POST ``body`` to ``target``, signed now. Never raises for network or HTTP failures: they are the result.

    Redirects are not followed (a receiver cannot bounce the request to an internal address).
    """
    refused = _refused_address(target.url)
    if refused:
        return WebhookSendResult(status_code=None, latency_ms=0, error=refused, retryable=False)
    timestamp = int(timezone.now().timestamp())
    headers = {
        "content-type": "application/json",
        **webhook_headers(secrets=target.signing_secrets(), message_id=message_id, timestamp=timestamp, body=body),
    }
    timeout = timeout if timeout is not None else settings.WEBHOOK_TIMEOUT_S
    started = time.perf_counter()
    try:
        with _http_client().stream(
            "POST", target.url, content=body.encode(), headers=headers, timeout=timeout
        ) as response:
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= WEBHOOK_RESPONSE_EXCERPT_CHARS:
                    break
    except Exception as error:  # any failure is this attempt's result; the retry schedule bounds it
        if not isinstance(error, httpx.HTTPError):
            logger.exception("webhook to %s failed unexpectedly", target.url)
        latency_ms = int((time.perf_counter() - started) * 1000)
        return WebhookSendResult(
            status_code=None, latency_ms=latency_ms, error=f"{type(error).__name__}: {error}"[:500]
        )
    latency_ms = int((time.perf_counter() - started) * 1000)
    code = response.status_code
    return WebhookSendResult(
        status_code=code,
        latency_ms=latency_ms,
        response_excerpt=excerpt.decode(errors="replace")[:WEBHOOK_RESPONSE_EXCERPT_CHARS],
        retry_after=_retry_after(response.headers.get("retry-after")),
        retryable=_is_retryable_status(code),
    )


def webhook_retry_delay(*, attempts_made: int, retry_after: timedelta | None = None) -> timedelta | None:
    """How long to wait after the ``attempts_made``-th failed attempt; ``None`` when the schedule is spent.

    A receiver's ``Retry-After`` is honoured when it asks for longer than the schedule (up to a day).
    """
    if attempts_made >= WEBHOOK_MAX_ATTEMPTS:
        return None
    base = WEBHOOK_RETRY_DELAYS[attempts_made - 1]
    delay = base * (1 + random.uniform(0, WEBHOOK_RETRY_JITTER))  # noqa: S311 - jitter, not security
    if retry_after is not None and delay < retry_after <= WEBHOOK_MAX_RETRY_AFTER:
        delay = retry_after
    return delay


# Endpoints ----------------------------------------------------------------------------------------------------------


def _clean_events(events: Iterable[str]) -> list[str]:
    events = list(dict.fromkeys(events or []))
    unknown = [event for event in events if event not in WebhookEventType.values]
    if unknown:
        raise ServiceError(f"Unknown events: {', '.join(unknown)}.", field="events")
    if not events:
        raise ServiceError("Pick at least one event.", field="events")
    return events


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError("Enter an http:// or https:// URL.", field="url")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        if parts.scheme != "https":
            raise ServiceError("Webhooks are sent over https only.", field="url")
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if parts.hostname == "localhost" or (literal is not None and not literal.is_global):
            raise ServiceError("Webhooks cannot be sent to private or local addresses.", field="url")
    return url


@transaction.atomic
def webhook_endpoint_create(
    *,
    organization,
    url: str,
    events: Iterable[str],
    description: str = "",
    is_active: bool = True,
    purpose: str = WebhookEndpointPurpose.SUBSCRIPTION,
    actor=None,
    request=None,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret. The caller shows ``endpoint.secret`` once; pages never show it again."""
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        purpose=purpose,
        url=_clean_url(url),
        # Subscriptions pick their events; other endpoints (a buyer's) receive what their owner sends them.
        events=_clean_events(events) if purpose == WebhookEndpointPurpose.SUBSCRIPTION else [],
        description=(description or "").strip()[:200],
        is_active=is_active,
        secret=webhook_secret_generate(),
        created_by=actor,
    )
    audit_record(
        organization=organization,
        action="webhook_endpoint.created",
        actor=actor,
        target=endpoint,
        request=request,
        changes={"url": [None, endpoint.url], "events": [None, endpoint.events]},
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, actor=None, request=None, **fields: Any) -> WebhookEndpoint:
    """Change url, events, description or is_active. Turning an endpoint back on resets its circuit breaker."""
    allowed = {"url", "events", "description", "is_active"}
    unknown = set(fields) - allowed
    if unknown:
        raise ServiceError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    cleaners = {"url": _clean_url, "events": _clean_events, "description": lambda v: (v or "").strip()[:200]}
    changes = {}
    for name, value in fields.items():
        value = cleaners[name](value) if name in cleaners else bool(value)
        if getattr(endpoint, name) != value:
            changes[name] = [getattr(endpoint, name), value]
            setattr(endpoint, name, value)
    if not changes:
        return endpoint
    if changes.get("is_active") == [False, True]:
        endpoint.disabled_at, endpoint.disabled_reason = None, ""
        endpoint.failing_since, endpoint.consecutive_failures = None, 0
    endpoint.save()
    audit_record(
        organization=endpoint.organization,
        action="webhook_endpoint.updated",
        actor=actor,
        target=endpoint,
        request=request,
        changes=changes,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor=None, request=None) -> WebhookEndpoint:
    """A new secret; the old one still signs for ``PREVIOUS_SECRET_VALID_FOR`` so receivers can switch over."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + PREVIOUS_SECRET_VALID_FOR
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    audit_record(
        organization=endpoint.organization,
        action="webhook_endpoint.secret_rotated",
        actor=actor,
        target=endpoint,
        request=request,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor=None, request=None) -> None:
    audit_record(
        organization=endpoint.organization,
        action="webhook_endpoint.deleted",
        actor=actor,
        target=endpoint,
        request=request,
        changes={"url": [endpoint.url, None]},
    )
    endpoint.delete()


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Turn off a failing endpoint, give up its pending deliveries and tell the owners (once). Returns whether it
    was active."""
    now = timezone.now()
    disabled = (
        WebhookEndpoint.objects.unscoped()
        .filter(pk=endpoint.pk, is_active=True)
        .update(is_active=False, disabled_at=now, disabled_reason=reason[:255], updated_at=now)
    )
    if not disabled:
        return False
    endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason[:255]
    WebhookDelivery.objects.unscoped().filter(endpoint_id=endpoint.pk, status=WebhookDeliveryStatus.PENDING).update(
        status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, last_error="The endpoint was disabled."
    )
    audit_record(
        organization=endpoint.organization,
        action="webhook_endpoint.disabled",
        target=endpoint,
        changes={"is_active": [True, False], "reason": [None, reason]},
    )
    from ..tasks import notify_webhook_endpoint_disabled

    transaction.on_commit(lambda: notify_webhook_endpoint_disabled.delay(endpoint.pk))
    return True


# Messages and deliveries ----------------------------------------------------------------------------------------------


# A burst's first attempts go out a few per task: a task costs the worker more than a send to a kept-alive
# receiver, and more deliveries per task would make the last of them wait for the others.
DELIVERIES_PER_TASK = 5


def _enqueue_on_commit(delivery_ids: Sequence[int]) -> None:
    from leads.services.outbox import outbox_handling_in_process

    from ..tasks import send_webhook_deliveries

    if not delivery_ids:
        return
    # A worker that kept up (a Facebook lead's fetch handling its own events) sends a few first attempts itself:
    # a trip through the broker fewer between a lead's arrival and the customer's system. Behind a backlog, or for
    # a broadcast to many endpoints, tasks send them (in parallel, batched).
    send_here = outbox_handling_in_process() and len(delivery_ids) <= DELIVERIES_PER_TASK

    def enqueue() -> None:
        if send_here and _attempted_in_process(delivery_ids):
            return
        for start in range(0, len(delivery_ids), DELIVERIES_PER_TASK):
            chunk = list(delivery_ids[start : start + DELIVERIES_PER_TASK])
            try:
                send_webhook_deliveries.delay(chunk)
            except Exception:  # The broker is down: the beat sweep sends the deliveries once it is back.
                logger.warning("webhook deliveries %s could not be queued; the sweep will", chunk, exc_info=True)

    transaction.on_commit(enqueue)


def _attempted_in_process(delivery_ids: Sequence[int]) -> bool:
    """First attempts sent here; False (leaving them to a task) if any raised. An attempt made twice is harmless:
    ``webhook_delivery_attempt`` locks the delivery and skips one that is not due."""
    try:
        for delivery_id in delivery_ids:
            webhook_delivery_attempt(delivery_id=delivery_id)
    except Exception:
        logger.warning("webhook deliveries %s could not be sent in process; queuing them", delivery_ids, exc_info=True)
        return False
    return True


# Every lead event of a subscribed organization writes its messages and deliveries: each is one statement, not
# the ORM's INSERT and a SELECT to learn the ids of what it inserted (bulk_create returns none for ignored rows).
_MESSAGE_SOURCE_CONFLICT = (
    "ON CONFLICT (organization_id, source_key) WHERE NOT (source_key = '') DO NOTHING"  # a source key used before
)
_DELIVERIES_SQL = """
WITH inserted AS ({insert})
SELECT id, message_id, endpoint_id FROM inserted
UNION ALL
SELECT delivery.id, delivery.message_id, delivery.endpoint_id
  FROM {table} AS delivery
  JOIN jsonb_populate_recordset(NULL::{table}, %(deliveries)s) AS wanted
    ON wanted.message_id = delivery.message_id AND wanted.endpoint_id = delivery.endpoint_id
 WHERE delivery.attempt_count = 0 AND delivery.status = %(pending)s
"""


@functools.cache
def _message_insert() -> InsertStatement:
    return InsertStatement(WebhookMessage, param="messages", many=True)


@functools.cache
def _delivery_insert() -> InsertStatement:
    return InsertStatement(WebhookDelivery, param="deliveries", many=True)


@functools.cache
def _deliveries_sql() -> str:
    insert = _delivery_insert().sql(
        suffix="ON CONFLICT (message_id, endpoint_id) DO NOTHING", returning=("id", "message_id", "endpoint_id")
    )
    # The second branch reads the table as it was before this statement: deliveries that existed and were never
    # attempted (their first queuing was lost), never the ones just inserted.
    return _DELIVERIES_SQL.format(insert=insert, table=WebhookDelivery._meta.db_table)


def webhook_messages_create(
    *, organization, event_type: str, items: Sequence[tuple[str, dict[str, Any], datetime | None]]
) -> list[WebhookMessage]:
    """One message per ``(source_key, data, occurred_at)``; a source key already used returns its earlier message."""
    if not items:
        return []
    rows = [
        WebhookMessage(
            organization=organization,
            message_id=webhook_message_id_generate(),
            event_type=event_type,
            payload=webhook_envelope(event_type=event_type, data=data, timestamp=occurred_at),
            source_key=source_key,
        )
        for source_key, data, occurred_at in items
    ]
    statement = _message_insert()
    with connection.cursor() as cursor:
        cursor.execute(
            statement.sql(suffix=_MESSAGE_SOURCE_CONFLICT, returning=("id", "message_id")), statement.params(rows)
        )
        inserted = {message_id: pk for pk, message_id in cursor.fetchall()}
    repeated = []
    for row in rows:
        if row.message_id in inserted:
            row.pk = inserted[row.message_id]
            row._state.adding = False
        else:
            repeated.append(row)
    if repeated:  # events seen before (a retried outbox batch): their earlier messages
        stored = {
            message.source_key: message
            for message in WebhookMessage.objects.unscoped().filter(
                organization=organization, source_key__in=[row.source_key for row in repeated]
            )
        }
        rows = [stored[row.source_key] if row.pk is None else row for row in rows]
    return rows


def deliveries_enqueue(
    *, messages: Sequence[WebhookMessage], endpoints: Sequence[WebhookEndpoint]
) -> list[WebhookDelivery]:
    """A delivery of each message to each endpoint (existing pairs are left alone), sent after commit.

    Works for any endpoints: an organization's subscriptions, a buyer's webhook, a single endpoint's test.
    Returns the deliveries that are new, and those that existed but were never attempted.
    """
    if not messages or not endpoints:
        return []
    rows = [
        WebhookDelivery(organization_id=message.organization_id, message=message, endpoint=endpoint)
        for message in messages
        for endpoint in endpoints
    ]
    by_pair = {(row.message_id, row.endpoint_id): row for row in rows}
    with connection.cursor() as cursor:
        cursor.execute(
            _deliveries_sql(),
            {
                **_delivery_insert().params(rows),
                "pending": WebhookDeliveryStatus.PENDING.value,
            },
        )
        found = cursor.fetchall()
    created = []
    for pk, message_id, endpoint_id in found:
        delivery = by_pair[message_id, endpoint_id]
        delivery.pk = pk
        delivery._state.adding = False
        created.append(delivery)
    _enqueue_on_commit([delivery.pk for delivery in created])
    return created


@transaction.atomic
def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint, actor=None, request=None) -> WebhookDelivery:
    """A ``webhook.test`` message to this endpoint only, delivered and logged like any other."""
    if not endpoint.is_active:
        raise ServiceError("Turn the endpoint on before sending a test.", field="is_active")
    data = {
        "endpoint_id": endpoint.pk,
        "message": "A test from LeadFlow. Real events look like this, with a lead in data.",
        "sent_by": getattr(actor, "email", None),
    }
    [message] = webhook_messages_create(
        organization=endpoint.organization, event_type=WEBHOOK_TEST_EVENT, items=[("", data, None)]
    )
    [delivery] = deliveries_enqueue(messages=[message], endpoints=[endpoint])
    return delivery


@transaction.atomic
def webhook_delivery_replay(*, delivery: WebhookDelivery, actor=None, request=None) -> WebhookDelivery:
    """Send a delivery again now, with the same ``webhook-id`` (receivers drop it if they already have it).

    Idempotent: a replay asked for while an earlier one still waits for its worker changes nothing, and the worker
    sends once. The retry schedule starts over.
    """
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint", "message")
        .get(pk=delivery.pk)
    )
    if not delivery.endpoint.is_active:
        raise ServiceError("Turn the endpoint back on before replaying its deliveries.", field="endpoint")
    now = timezone.now()
    waiting_for_worker = (
        delivery.status == WebhookDeliveryStatus.PENDING
        and delivery.scheduled_attempts == 0
        and (delivery.next_attempt_at is None or delivery.next_attempt_at <= now)
    )
    if not waiting_for_worker:
        previous = delivery.status
        delivery.status = WebhookDeliveryStatus.PENDING
        delivery.next_attempt_at = now
        delivery.scheduled_attempts = 0
        delivery.save(update_fields=["status", "next_attempt_at", "scheduled_attempts"])
        audit_record(
            organization=delivery.endpoint.organization,
            action="webhook_delivery.replayed",
            actor=actor,
            target=delivery,
            request=request,
            changes={"status": [previous, delivery.status]},
        )
    _enqueue_on_commit([delivery.pk])
    return delivery


# Take a lease on a due delivery in one statement: the row is locked (or skipped when another worker holds it),
# checked and stamped with its new attempt, so the attempt after it cannot start until this one ends or the
# lease runs out.
_CLAIM_SQL = f"""
UPDATE {WebhookDelivery._meta.db_table} AS delivery
   SET attempt_count = delivery.attempt_count + 1,
       scheduled_attempts = delivery.scheduled_attempts + 1,
       last_attempt_at = %(now)s,
       next_attempt_at = %(lease_until)s
  FROM {WebhookEndpoint._meta.db_table} AS endpoint
 WHERE delivery.id = (SELECT id FROM {WebhookDelivery._meta.db_table} WHERE id = %(delivery_id)s FOR UPDATE SKIP LOCKED)
   AND endpoint.id = delivery.endpoint_id
   AND endpoint.is_active
   AND delivery.status = %(pending)s
   AND (delivery.next_attempt_at IS NULL OR delivery.next_attempt_at <= %(now)s)
RETURNING delivery.attempt_count, delivery.scheduled_attempts
"""  # noqa: S608


def _claim(delivery_id: int) -> tuple[WebhookDelivery, int, str] | None:
    """Lease a due delivery; ``None`` when it is not due, done, another worker has it, or its endpoint is off."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "delivery_id": delivery_id,
                "now": now,
                "lease_until": now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_S) + ATTEMPT_LEASE_MARGIN,
                "pending": WebhookDeliveryStatus.PENDING.value,
            },
        )
        claimed = cursor.fetchone()
    if claimed is None:
        # A pending delivery whose endpoint was turned off ends here (the sweep would find it again otherwise).
        WebhookDelivery.objects.unscoped().filter(
            pk=delivery_id, status=WebhookDeliveryStatus.PENDING, endpoint__is_active=False
        ).update(status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, last_error="The endpoint was disabled.")
        return None
    number, scheduled_attempts = claimed
    # The first attempt after a replay (which restarts the schedule) is the replay's.
    trigger = (
        WebhookAttemptTrigger.REPLAY if scheduled_attempts == 1 and number > 1 else WebhookAttemptTrigger.SCHEDULED
    )
    delivery = (
        WebhookDelivery.objects.unscoped().select_related("message", "endpoint__organization").get(pk=delivery_id)
    )
    return delivery, number, trigger


def webhook_body(message: WebhookMessage) -> str:
    return json.dumps(message.payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


# What other apps do when a delivery to one of their endpoints succeeds (campaigns meters buyer webhooks), in the
# transaction that records the success: ``@webhook_delivery_succeeded(purpose, …)``.
_SUCCESS_HOOKS: dict[str, list[Callable[[WebhookDelivery, WebhookAttempt], None]]] = {}


def webhook_delivery_succeeded(*purposes: str):
    def register(function):
        for purpose in purposes:
            _SUCCESS_HOOKS.setdefault(purpose, []).append(function)
        return function

    return register


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookAttempt | None:
    """Try a delivery once if it is due; returns the attempt, or ``None`` when there was nothing to do."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    delivery, number, trigger = claimed
    endpoint, message = delivery.endpoint, delivery.message
    result = webhook_deliver(target=endpoint, message_id=message.message_id, body=webhook_body(message))
    now = timezone.now()
    attempt = WebhookAttempt(
        organization_id=delivery.organization_id,
        delivery=delivery,
        number=number,
        trigger=trigger,
        started_at=delivery.last_attempt_at,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        response_excerpt=result.response_excerpt,
        error=result.error,
        succeeded=result.succeeded,
    )
    if result.succeeded:
        hooks = _SUCCESS_HOOKS.get(endpoint.purpose, [])
        with transaction.atomic() if hooks else contextlib.nullcontext():
            _record_success(delivery, attempt, now)
            for hook in hooks:
                hook(delivery, attempt)
        _endpoint_succeeded(endpoint, now)
        webhook_attempt_count(outcome="succeeded")
        return attempt
    retry_in = None
    with transaction.atomic():
        attempt.save()
        delivery.last_status_code, delivery.last_latency_ms = result.status_code, result.latency_ms
        delivery.last_error = result.error
        if result.retryable:
            retry_in = webhook_retry_delay(attempts_made=delivery.scheduled_attempts, retry_after=result.retry_after)
        if retry_in is None:
            delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.FAILED, None
        else:
            delivery.next_attempt_at = now + retry_in
        _endpoint_failed(endpoint, now, status_code=result.status_code)
        if not endpoint.is_active:  # the breaker just tripped: this delivery ends with the others
            delivery.status, delivery.next_attempt_at, retry_in = WebhookDeliveryStatus.FAILED, None, None
        delivery.save(
            update_fields=[
                "status",
                "delivered_at",
                "next_attempt_at",
                "last_status_code",
                "last_latency_ms",
                "last_error",
            ]
        )
        if retry_in is not None and retry_in <= COUNTDOWN_AT_MOST:
            _retry_on_commit(delivery.pk, retry_in)
    webhook_attempt_count(outcome="failed" if retry_in is None else "retrying")
    return attempt


# A successful attempt, logged and closing its delivery in one statement (the path nearly every delivery takes).
_RECORD_SUCCESS_SQL = """
WITH attempt AS ({insert_attempt})
UPDATE {delivery}
   SET status = %(succeeded)s, delivered_at = %(now)s, next_attempt_at = NULL,
       last_status_code = %(status_code)s, last_latency_ms = %(latency_ms)s, last_error = ''
 WHERE id = %(delivery_id)s
RETURNING (SELECT id FROM attempt)
"""


@functools.cache
def _record_success_sql() -> str:
    return _RECORD_SUCCESS_SQL.format(insert_attempt=_attempt_insert().sql(), delivery=WebhookDelivery._meta.db_table)


@functools.cache
def _attempt_insert() -> InsertStatement:
    return InsertStatement(WebhookAttempt, param="attempt")


def _record_success(delivery: WebhookDelivery, attempt: WebhookAttempt, now: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _record_success_sql(),
            {
                **_attempt_insert().params(attempt),
                "succeeded": WebhookDeliveryStatus.SUCCEEDED.value,
                "now": now,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "delivery_id": delivery.pk,
            },
        )
        attempt.pk = cursor.fetchone()[0]
    attempt._state.adding = False
    delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDeliveryStatus.SUCCEEDED, now, None
    delivery.last_status_code, delivery.last_latency_ms, delivery.last_error = (
        attempt.status_code,
        attempt.latency_ms,
        "",
    )


def _retry_on_commit(delivery_id: int, delay: timedelta) -> None:
    from ..tasks import send_webhook_delivery

    def enqueue() -> None:
        try:
            send_webhook_delivery.apply_async((delivery_id,), countdown=delay.total_seconds())
        except Exception:
            logger.warning("webhook retry %s could not be queued; the sweep will", delivery_id, exc_info=True)

    transaction.on_commit(enqueue)


# A busy endpoint succeeds many times a second: its healthy row is rewritten at most this often.
SUCCESS_WRITE_INTERVAL = timedelta(seconds=1)


def _endpoint_succeeded(endpoint: WebhookEndpoint, now: datetime) -> None:
    if (
        endpoint.failing_since is None
        and not endpoint.consecutive_failures
        and endpoint.last_success_at is not None
        and now - endpoint.last_success_at < SUCCESS_WRITE_INTERVAL
    ):
        return  # healthy, and recorded a moment ago as this copy was read
    WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk).update(
        last_success_at=now, failing_since=None, consecutive_failures=0
    )


def _endpoint_failed(endpoint: WebhookEndpoint, now: datetime, *, status_code: int | None) -> None:
    WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, failing_since=Coalesce(F("failing_since"), Value(now))
    )
    if status_code == 410:
        webhook_endpoint_disable(endpoint=endpoint, reason="The receiver answered 410 Gone.")
        return
    failing_since = (
        WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk).values_list("failing_since", flat=True).first()
    )
    if failing_since is not None and now - failing_since >= WEBHOOK_DISABLE_AFTER_FAILING_FOR:
        days = WEBHOOK_DISABLE_AFTER_FAILING_FOR.days
        webhook_endpoint_disable(endpoint=endpoint, reason=f"Every delivery failed for {days} days.")


def webhook_deliveries_send_due(*, limit: int = 1000) -> int:
    """Queue deliveries whose time has come (beat): long retries, and any whose task was lost. Returns how many."""
    from ..tasks import send_webhook_delivery

    due = list(
        WebhookDelivery.objects.unscoped()
        .filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        send_webhook_delivery.delay(delivery_id)
    return len(due)
