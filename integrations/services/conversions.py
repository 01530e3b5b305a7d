"""Closing the loop with Meta: a Facebook lead's stage changes are sent to the Conversions API for CRM ("Conversion
Leads"), keyed by the leadgen id, so ad delivery learns which leads turn out well.

Per connection and opt-in: a Facebook connection sends only with ``conversions_enabled`` and a ``dataset_id`` in
its settings (validated by the connection service), and optionally only the stages named in
``conversions_stages``. The token is ``conversions_access_token`` when one was pasted (a system user's token for
the dataset), else the page's access token.

Meta's payload specification asks for "all stages as they are updated, including the initial lead stage", so a
new Facebook lead sends the stage it starts in (``lead.created``) and each change sends the stage entered
(``lead.stage_changed``).

How a stage travels, after the outbound webhooks (``services.webhooks``) but in rows of its own: the outbox
handlers write a ``ConversionEvent`` per event (unique on the outbox event, so a retried batch
writes nothing new) and queues a task on commit. The task claims the row under a lock with a lease on
``next_attempt_at``, posts it with no transaction open, and records the answer: sent; retried after
``CONVERSION_RETRY_DELAYS`` when the failure may pass; otherwise failed, replayable from the admin. An expired or
revoked token (Graph error 190 and kin) also turns the connection to error, which emails its owners. Beat sends
whatever is due and was not queued (long delays, lost tasks).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leads.constants import ActivityKind
from leads.models import InboundSubmission, Lead, LeadActivity, OutboxEvent, PipelineStage

from ..constants import (
    CONVERSION_LEAD_EVENT_SOURCE,
    CONVERSION_MAX_ATTEMPTS,
    CONVERSION_MAX_EVENT_AGE,
    CONVERSION_RESPONSE_EXCERPT_CHARS,
    CONVERSION_RETRY_DELAYS,
    ConnectionStatus,
    ConversionEventStatus,
    IntegrationProvider,
)
from ..models import ConversionEvent, IntegrationConnection
from ..providers import facebook
from ..selectors.connections import conversions_connections
from .connections import connection_record_failure, connection_record_success, connection_update

logger = logging.getLogger(__name__)

STAGE_CHANGED_TOPIC = "lead.stage_changed"
# The timeline entries ``lead_change_stage`` writes, with ``{"from": stage id, "to": stage id}``.
STAGE_CHANGE_ACTIVITIES = (ActivityKind.STAGE_CHANGED, ActivityKind.WON, ActivityKind.LOST)
# A retry this close is queued with a countdown; later ones are left to the beat sweep (brokers hold long-delayed
# tasks badly), as for outbound webhooks.
COUNTDOWN_AT_MOST = timedelta(minutes=5)
# While a send is in flight the row is not due, so a second task or the sweep leaves it alone; a worker that dies
# mid-send frees it for the sweep once this passes.
ATTEMPT_LEASE_MARGIN = timedelta(seconds=60)


# Settings ---------------------------------------------------------------------------------------------------------


def connection_conversions_enabled(connection: IntegrationConnection) -> bool:
    options = connection.settings or {}
    return (
        connection.provider == IntegrationProvider.FACEBOOK
        and connection.status != ConnectionStatus.DISCONNECTED
        and bool(options.get("conversions_enabled"))
        and bool(options.get("dataset_id"))
    )


def connection_conversions_configure(
    *,
    connection: IntegrationConnection,
    enabled: bool,
    dataset_id: str,
    stages: Sequence[str] = (),
    access_token: str = "",
    actor=None,
    request=None,
) -> IntegrationConnection:
    """Turn sending stages to Meta on or off. A pasted ``access_token`` replaces the stored one; empty keeps it."""
    if connection.provider != IntegrationProvider.FACEBOOK:
        raise ServiceError("Only Facebook Lead Ads connections send lead stages to Meta.")
    return connection_update(
        connection=connection,
        settings={"conversions_enabled": enabled, "dataset_id": dataset_id, "conversions_stages": list(stages)},
        credentials={"conversions_access_token": access_token.strip()} if access_token.strip() else None,
        actor=actor,
        request=request,
    )


def _stage_wanted(connection: IntegrationConnection, stage: dict[str, Any]) -> bool:
    wanted = {name.casefold() for name in connection.settings.get("conversions_stages") or []}
    if not wanted:
        return True
    return str(stage.get("name", "")).casefold() in wanted or str(stage.get("kind", "")).casefold() in wanted


# Queuing (the outbox handler) -------------------------------------------------------------------------------------


def _stages_entered(events: Sequence[OutboxEvent], leads: dict[int, Lead]) -> dict[int, dict[str, Any]]:
    """The stage each event put its lead in (the first stage for ``lead.created``), as ``{"name", "kind"}``.

    Not the lead's stage now: by the time the worker runs the lead may have moved on (qualified, then won), and the
    two topics are handled by separate tasks in no set order. The payloads name only the stage left, so the stage
    entered is read from the lead's timeline, where ``lead_change_stage`` records ``{"from", "to"}`` in the same
    transaction, just before the event: the latest change from the event's previous stage made by then. A lead's
    first stage is where its first change started from, or its stage now when it never changed.
    """
    changes: dict[int, list[tuple[Any, dict]]] = defaultdict(list)
    timeline = (
        LeadActivity.objects.filter(lead_id__in=list(leads), kind__in=STAGE_CHANGE_ACTIVITIES, data__has_key="to")
        .order_by("created_at", "id")
        .values_list("lead_id", "created_at", "data")
    )
    for lead_id, created_at, data in timeline:
        changes[lead_id].append((created_at, data))
    stage_ids: dict[int, Any] = {}
    for event in events:
        lead = leads[event.payload["lead_id"]]
        if event.topic == STAGE_CHANGED_TOPIC:
            left = (event.payload.get("previous_stage") or {}).get("id")
            made = [
                data
                for created_at, data in changes[lead.pk]
                if created_at <= event.created_at and data.get("from") == left
            ]
            stage_ids[event.pk] = made[-1]["to"] if made else lead.stage_id
        else:
            stage_ids[event.pk] = changes[lead.pk][0][1].get("from") if changes[lead.pk] else lead.stage_id
    stages = PipelineStage.objects.in_bulk([stage_id for stage_id in stage_ids.values() if stage_id])
    return {
        pk: {"name": stages[stage_id].name, "kind": stages[stage_id].kind}
        for pk, stage_id in stage_ids.items()
        if stage_id in stages
    }


def _connections_of(leads: Iterable[Lead], connections: dict[int, IntegrationConnection]) -> dict[int, Any]:
    """The opted-in connection each lead came through: the one its Facebook submission names, else the one of the
    page recorded on the lead (leads entered by hand or imported with source "facebook")."""
    leads = list(leads)
    found: dict[int, IntegrationConnection] = {}
    submitted = (
        InboundSubmission.objects.filter(lead_id__in=[lead.pk for lead in leads], source=IntegrationProvider.FACEBOOK)
        .order_by("received_at", "id")
        .values_list("lead_id", "context__connection_id")
    )
    for lead_id, connection_id in submitted:
        if isinstance(connection_id, int) and connection_id in connections:
            found.setdefault(lead_id, connections[connection_id])
    by_page = {connection.external_account_id: connection for connection in connections.values()}
    for lead in leads:
        page_id = str((lead.custom or {}).get("facebook_page_id") or "")
        if lead.pk not in found and page_id in by_page:
            found[lead.pk] = by_page[page_id]
    return found


def conversion_events_queue(*, events: Sequence[OutboxEvent]) -> list[ConversionEvent]:
    """For ``lead.created`` or ``lead.stage_changed`` outbox events (one organization's batch, in the outbox's
    transaction): a row per event of a Facebook lead whose connection opted in, sent after commit. An organization
    that opted in nowhere costs no query (its connections are remembered for a few seconds per process)."""
    if not events:
        return []
    connections = {
        connection.pk: connection for connection in conversions_connections(organization_id=events[0].organization_id)
    }
    if not connections:
        return []
    leads = (
        Lead.objects.filter(pk__in={event.payload["lead_id"] for event in events}, source=IntegrationProvider.FACEBOOK)
        .exclude(external_id="")
        .only("pk", "external_id", "stage_id", "custom")
        .in_bulk()
    )
    # Meta matches on the leadgen id, a number; a lead with anything else there cannot be matched.
    leads = {pk: lead for pk, lead in leads.items() if lead.external_id.isdigit()}
    if not leads:
        return []
    lead_connections = _connections_of(leads.values(), connections)
    events = [event for event in events if event.payload["lead_id"] in lead_connections]
    if not events:
        return []
    entered = _stages_entered(events, leads)
    keys = [f"outbox:{event.pk}" for event in events]
    already = set(ConversionEvent.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True))
    rows = []
    for event, key in zip(events, keys, strict=True):
        lead = leads[event.payload["lead_id"]]
        connection, stage = lead_connections[lead.pk], entered.get(event.pk)
        if key in already or stage is None or not _stage_wanted(connection, stage):
            continue
        rows.append(
            ConversionEvent(
                organization_id=event.organization_id,
                connection=connection,
                lead=lead,
                leadgen_id=lead.external_id,
                event_name=str(stage["name"])[:100],
                event_time=event.created_at,
                idempotency_key=key,
            )
        )
    created = ConversionEvent.objects.bulk_create(rows)
    _enqueue_on_commit([row.pk for row in created])
    return created


def _enqueue_on_commit(ids: list[int]) -> None:
    from ..tasks import send_conversion_event

    def enqueue() -> None:
        for conversion_event_id in ids:
            try:
                send_conversion_event.delay(conversion_event_id)
            except Exception:  # the broker is down: the row is due, and the beat sweep sends it
                logger.warning("conversion event %s could not be queued; the sweep will", conversion_event_id)

    if ids:
        transaction.on_commit(enqueue)


# Sending ----------------------------------------------------------------------------------------------------------


def conversion_retry_delay(*, attempts_made: int) -> timedelta | None:
    """How long to wait after the ``attempts_made``-th failed try; ``None`` when the schedule is spent."""
    if attempts_made >= CONVERSION_MAX_ATTEMPTS:
        return None
    return CONVERSION_RETRY_DELAYS[attempts_made - 1]


def conversion_event_payload(conversion_event: ConversionEvent) -> dict[str, Any]:
    return facebook.crm_event(
        leadgen_id=conversion_event.leadgen_id,
        event_name=conversion_event.event_name,
        event_time=int(conversion_event.event_time.timestamp()),
        lead_event_source=CONVERSION_LEAD_EVENT_SOURCE,
    )


def _access_token(connection: IntegrationConnection) -> tuple[str, bool]:
    """The token to send with, and whether it is the page's own (whose success says the page works)."""
    dataset_token = connection.credential("conversions_access_token")
    if dataset_token:
        return dataset_token, False
    return connection.credential("page_access_token"), True


def _give_up(conversion_event: ConversionEvent, status: str, reason: str) -> None:
    conversion_event.status, conversion_event.next_attempt_at = status, None
    conversion_event.last_error = reason[:500]
    conversion_event.save(update_fields=["status", "next_attempt_at", "last_error"])


def _claim(conversion_event_id: int) -> ConversionEvent | None:
    """Lock a due event and take a lease on it; ``None`` when it is not due, done, or another worker has it."""
    now = timezone.now()
    with transaction.atomic():
        conversion_event = (
            ConversionEvent.objects.unscoped()
            .select_for_update(of=("self",), skip_locked=True)
            .select_related("connection")
            .filter(pk=conversion_event_id)
            .first()
        )
        if conversion_event is None or conversion_event.status != ConversionEventStatus.PENDING:
            return None
        if conversion_event.next_attempt_at is not None and conversion_event.next_attempt_at > now:
            return None
        if not connection_conversions_enabled(conversion_event.connection):
            _give_up(conversion_event, ConversionEventStatus.SKIPPED, "The connection no longer sends stages to Meta.")
            return None
        if conversion_event.event_time < now - CONVERSION_MAX_EVENT_AGE:
            _give_up(conversion_event, ConversionEventStatus.FAILED, "Meta accepts stage changes up to 7 days old.")
            return None
        if not _access_token(conversion_event.connection)[0]:
            _give_up(conversion_event, ConversionEventStatus.FAILED, "No access token: reconnect the page.")
            return None
        conversion_event.attempts += 1
        conversion_event.scheduled_attempts += 1
        conversion_event.last_attempt_at = now
        lease = timedelta(seconds=settings.FACEBOOK_GRAPH_TIMEOUT_S) + ATTEMPT_LEASE_MARGIN
        conversion_event.next_attempt_at = now + lease
        conversion_event.save(update_fields=["attempts", "scheduled_attempts", "last_attempt_at", "next_attempt_at"])
        return conversion_event


def conversion_event_attempt(*, conversion_event_id: int) -> ConversionEvent | None:
    """Send one stage to Meta if it is due; returns the row as left, or ``None`` when there was nothing to do."""
    conversion_event = _claim(conversion_event_id)
    if conversion_event is None:
        return None
    connection = conversion_event.connection
    token, is_page_token = _access_token(connection)
    error: facebook.GraphError | None = None
    answer: dict = {}
    try:
        answer = facebook.crm_events_send(
            dataset_id=connection.settings["dataset_id"],
            access_token=token,
            events=[conversion_event_payload(conversion_event)],
        )
    except facebook.GraphError as graph_error:
        error = graph_error
    if error is None and not answer.get("events_received"):
        error = facebook.GraphError(f"Meta received no event: {answer}"[:500], status=200, retryable=False)
    now = timezone.now()
    retry_in = None
    with transaction.atomic():
        conversion_event.response_excerpt = json.dumps(answer)[:CONVERSION_RESPONSE_EXCERPT_CHARS] if answer else ""
        if error is None:
            conversion_event.status, conversion_event.sent_at, conversion_event.next_attempt_at = (
                ConversionEventStatus.SENT,
                now,
                None,
            )
            # Graph answers a successful POST with 200; graph_request returns only the body.
            conversion_event.last_status_code, conversion_event.last_error = 200, ""
        else:
            conversion_event.last_status_code, conversion_event.last_error = error.status, error.message[:500]
            if error.retryable:
                retry_in = conversion_retry_delay(attempts_made=conversion_event.scheduled_attempts)
            if retry_in is None:
                conversion_event.status, conversion_event.next_attempt_at = ConversionEventStatus.FAILED, None
            else:
                conversion_event.next_attempt_at = now + retry_in
        conversion_event.save(
            update_fields=["status", "sent_at", "next_attempt_at", "last_status_code", "last_error", "response_excerpt"]
        )
        if retry_in is not None and retry_in <= COUNTDOWN_AT_MOST:
            _retry_on_commit(conversion_event.pk, retry_in)
    if error is None:
        logger.info("conversion event %s sent to dataset %s", conversion_event.pk, connection.settings["dataset_id"])
        if is_page_token:
            connection_record_success(connection=connection)
    else:
        logger.warning("conversion event %s: %s (retry in %s)", conversion_event.pk, error.message, retry_in)
        if error.is_auth_error:
            # The token cannot fix itself: the connection turns to error and its owners are told.
            connection_record_failure(connection=connection, error=f"Conversions API: {error.message}", auth_error=True)
    return conversion_event


def _retry_on_commit(conversion_event_id: int, delay: timedelta) -> None:
    from ..tasks import send_conversion_event

    def enqueue() -> None:
        try:
            send_conversion_event.apply_async((conversion_event_id,), countdown=delay.total_seconds())
        except Exception:
            logger.warning("conversion retry %s could not be queued; the sweep will", conversion_event_id)

    transaction.on_commit(enqueue)


def conversion_events_send_due(*, limit: int = 1000) -> int:
    """Queue events whose time has come (beat): long retries, and any whose task was lost. Returns how many."""
    from ..tasks import send_conversion_event

    due = list(
        ConversionEvent.objects.unscoped()
        .filter(status=ConversionEventStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for conversion_event_id in due:
        send_conversion_event.delay(conversion_event_id)
    return len(due)


@transaction.atomic
def conversion_event_replay(*, conversion_event: ConversionEvent, actor=None, request=None) -> ConversionEvent:
    """Send a failed or skipped stage again, with a fresh retry schedule. A sent one is refused: Meta would count
    the stage twice."""
    conversion_event = ConversionEvent.objects.unscoped().select_for_update().get(pk=conversion_event.pk)
    if conversion_event.status == ConversionEventStatus.SENT:
        raise ServiceError("Meta already has this stage.")
    waiting_for_worker = (
        conversion_event.status == ConversionEventStatus.PENDING and conversion_event.scheduled_attempts == 0
    )
    if not waiting_for_worker:
        previous = conversion_event.status
        conversion_event.status = ConversionEventStatus.PENDING
        conversion_event.next_attempt_at = timezone.now()
        conversion_event.scheduled_attempts = 0
        conversion_event.save(update_fields=["status", "next_attempt_at", "scheduled_attempts"])
        audit_record(
            organization=conversion_event.organization,
            action="conversion_event.replayed",
            actor=actor,
            target=conversion_event,
            request=request,
            changes={"status": [previous, conversion_event.status]},
        )
    _enqueue_on_commit([conversion_event.pk])
    return conversion_event
