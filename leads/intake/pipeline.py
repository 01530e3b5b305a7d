"""The one intake pipeline every source goes through.

1. ``submission_store`` writes the raw payload (committed on its own, before anything can fail);
2. ``submission_process`` maps, normalizes and validates it, deduplicates under advisory locks, creates the lead,
   its first activity and a ``lead.created`` outbox event in one transaction, and records the outcome on the
   submission. A submission that failed or was rejected can be processed again (``manage.py reprocess_submissions``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg.types.json import Jsonb

from leadflow.tenancy.context import organization_scope

from ..constants import ActivityKind, LeadSource, SubmissionStatus
from ..models import InboundSubmission, Lead, LeadActivity, OutboxEvent
from ..scoring import RuleScorer, active_rules
from ..services.activity import activity_record
from ..services.leads import lead_rescore
from ..services.outbox import outbox_publish, outbox_wake_on_commit
from ..services.stages import first_open_stage_id
from .custom_fields import custom_field_schema
from .mapping import clean_lead_fields, json_safe, map_payload
from .normalize import NormalizationError

logger = logging.getLogger(__name__)

# Headers never stored with a submission: credentials and cookies.
SECRET_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization", "x-csrftoken"})
FINAL_STATUSES = (SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE, SubmissionStatus.REJECTED)


@dataclass
class IntakeOutcome:
    submission: InboundSubmission
    status: str
    lead: Lead | None = None
    # For a duplicate: the original lead it matched.
    original: Lead | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_new(self) -> bool:
        return self.status == SubmissionStatus.ACCEPTED


def safe_headers(headers) -> dict[str, str]:
    return {k: str(v)[:1000] for k, v in headers.items() if k.lower() not in SECRET_HEADERS}


def _commit_without_waiting_for_disk() -> None:
    """The raw payload's own commit skips the WAL flush wait: the processing transaction that follows (or the
    outcome written when processing fails) flushes the WAL up to and past it before the sender gets an answer, so
    nothing the sender was told is stored can be lost. It saves one disk wait per submission."""
    if len(connection.atomic_blocks) == 1:  # only when this is the whole transaction, not a savepoint in another
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def storable_text(raw_body: str | bytes) -> str:
    """The body as text PostgreSQL can store: no NUL, no lone surrogates (a decoded JSON string may carry them)."""
    if isinstance(raw_body, bytes):
        raw_body = raw_body.decode("utf-8", errors="replace")
    return raw_body.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def body_digest(raw_body: str | bytes) -> str:
    return hashlib.sha256(storable_text(raw_body).encode()).hexdigest()


def submission_store(
    *,
    organization,
    source: str,
    raw_body: str | bytes,
    content_type: str = "application/json",
    headers=None,
    context: dict[str, Any] | None = None,
    remote_ip: str | None = None,
    idempotency_key: str = "",
) -> tuple[InboundSubmission, bool]:
    """Store the payload as received. With an ``idempotency_key`` already used, returns that submission and False."""
    raw_body = storable_text(raw_body)
    submission = InboundSubmission(
        organization=organization,
        source=source,
        raw_body=raw_body,
        content_type=(content_type or "")[:120],
        headers=safe_headers(headers or {}),
        context=context or {},
        remote_ip=remote_ip,
        idempotency_key=idempotency_key[:255],
        body_sha256=body_digest(raw_body),
    )
    try:
        with transaction.atomic():
            _commit_without_waiting_for_disk()
            submission.save()
        return submission, True
    except IntegrityError:
        existing = InboundSubmission.objects.unscoped().get(
            organization=organization, idempotency_key=idempotency_key[:255]
        )
        return existing, False


def parse_body(submission: InboundSubmission) -> Any:
    content_type = submission.content_type.split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(submission.raw_body, keep_blank_values=True))
    try:
        return json.loads(submission.raw_body)
    except ValueError as error:
        raise NormalizationError(f"The body is not valid JSON: {error}.") from None


def submission_process(
    submission: InboundSubmission, *, payload: Any = None, actor=None, tags: list[str] | None = None
) -> IntakeOutcome:
    """Turn a stored submission into a lead (or a duplicate, or field errors). Never raises for bad input."""
    organization = submission.organization
    with organization_scope(organization):
        try:
            if payload is None:
                payload = parse_body(submission)
            shaped = map_payload(submission.source, payload, submission.context)
            schema = custom_field_schema(
                organization=organization, source=submission.source, context=submission.context
            )
            fields, errors = clean_lead_fields(
                shaped, organization=organization, source=submission.source, schema=schema
            )
        except NormalizationError as error:
            fields, errors = {}, {"non_field_errors": [str(error)]}
        if errors:
            _finish(submission, SubmissionStatus.REJECTED, error={"errors": errors})
            return IntakeOutcome(submission, SubmissionStatus.REJECTED, errors=errors)
        if tags:
            fields["tags"] = list(dict.fromkeys([*fields.get("tags", []), *tags]))
        try:
            return _create_or_match(submission, fields, actor)
        except Exception as error:
            logger.exception("submission %s failed", submission.pk)
            _finish(submission, SubmissionStatus.FAILED, error={"detail": f"{type(error).__name__}: {error}"[:2000]})
            return IntakeOutcome(
                submission,
                SubmissionStatus.FAILED,
                errors={"non_field_errors": ["The lead was stored and will be processed again."]},
            )


def lead_intake(
    *, organization, source: str, payload: dict[str, Any], actor=None, context=None, tags=None, **store
) -> IntakeOutcome:
    """Store and process in one call, for sources that already hold the payload as a dict (forms, CSV rows)."""
    raw = json.dumps(payload, default=str, ensure_ascii=False)
    submission, _ = submission_store(organization=organization, source=source, raw_body=raw, context=context, **store)
    return submission_process(submission, payload=payload, actor=actor, tags=tags)


def _lock_key(*parts: Any) -> int:
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _create_or_match(submission: InboundSubmission, fields: dict[str, Any], actor) -> IntakeOutcome:
    organization = submission.organization
    source = submission.source
    email, phone, external_id = fields.get("email"), fields.get("phone"), fields.get("external_id")
    keys = sorted(
        {
            _lock_key(organization.pk, kind, value)
            for kind, value in (("email", email), ("phone", phone), (f"ext:{source}", external_id))
            if value
        }
    )
    with transaction.atomic():
        # Identical submissions arriving at once serialize here, so the second sees the first's lead.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k ORDER BY k", [keys])
        redelivered, original = _find_match(organization, source, fields, received_at=submission.received_at)
        if redelivered is not None:
            original = redelivered.duplicate_of or redelivered
            _finish(submission, SubmissionStatus.DUPLICATE, lead=redelivered)
            return IntakeOutcome(submission, SubmissionStatus.DUPLICATE, lead=redelivered, original=original)

        lead = Lead(
            organization=organization,
            source=source,
            # The first open stage, looked up inside the INSERT: one round trip fewer per lead.
            stage_id=first_open_stage_id(organization),
            received_at=submission.received_at,
            duplicate_of=original,
            **fields,
        )
        # Born with its score: scoring later would write every lead twice (and all its indexes with it).
        lead_rescore(lead, rules=active_rules(organization.pk), scorer=RuleScorer(), save=False)
        lead.save()
        lead.__dict__.pop("stage_id")  # the database chose it: loaded from there if anyone asks
        label = LeadSource(source).label
        if original is not None:
            Lead.objects.filter(pk=original.pk).update(duplicate_count=F("duplicate_count") + 1)
            activity_record(
                lead=lead,
                kind=ActivityKind.DUPLICATE,
                actor=actor,
                message=f"Duplicate of {original.display_name} received from {label}",
                data={"original_id": original.pk, "submission_id": submission.pk},
            )
            status = SubmissionStatus.DUPLICATE
            outbox_publish(
                organization=organization,
                topic="lead.duplicate",
                payload={"lead_id": lead.pk, "original_id": original.pk},
            )
            _finish(submission, status, lead=lead)
        else:
            status = SubmissionStatus.ACCEPTED
            _record_new_lead(submission, lead, actor=actor, message=f"Received from {label}")
    return IntakeOutcome(submission, status, lead=lead, original=original)


# What a new lead leaves behind, in one statement: its first timeline entry, its ``lead.created`` outbox event and
# the submission's outcome. The same rows ``activity_record``, ``outbox_publish`` and ``_finish`` write, for the
# path every lead takes, at a third of the round trips and without the ORM building three statements per lead.
_RECORD_NEW_LEAD_SQL = f"""
WITH activity AS (
    INSERT INTO {LeadActivity._meta.db_table} (organization_id, lead_id, kind, actor_id, message, data, created_at)
    VALUES (%(organization)s, %(lead)s, %(kind)s, %(actor)s, %(message)s, %(activity_data)s, %(now)s)
), event AS (
    INSERT INTO {OutboxEvent._meta.db_table} (organization_id, topic, payload, created_at, attempts, last_error)
    VALUES (%(organization)s, %(topic)s, %(event_payload)s, %(now)s, 0, '')
)
UPDATE {InboundSubmission._meta.db_table}
   SET status = %(status)s, lead_id = %(lead)s, error = NULL, processed_at = %(now)s, attempts = attempts + 1
 WHERE id = %(submission)s
"""  # noqa: S608 - the table names come from the models; every value is bound


def _record_new_lead(submission: InboundSubmission, lead: Lead, *, actor, message: str) -> None:
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_NEW_LEAD_SQL,
            {
                "organization": lead.organization_id,
                "lead": lead.pk,
                "kind": ActivityKind.CREATED.value,
                "actor": actor.pk if actor else None,
                "message": message[:500],
                "activity_data": Jsonb({"submission_id": submission.pk}),
                "now": now,
                "topic": "lead.created",
                "event_payload": Jsonb({"lead_id": lead.pk}),
                "status": SubmissionStatus.ACCEPTED.value,
                "submission": submission.pk,
            },
        )
    outbox_wake_on_commit(lead.organization_id, "lead.created")
    submission.status, submission.lead, submission.error, submission.processed_at = (
        SubmissionStatus.ACCEPTED,
        lead,
        None,
        now,
    )
    submission.attempts += 1


# Each branch reads one index (the unique external id one, the partial email and phone ones). No ORDER BY and no
# LIMIT on purpose: with them PostgreSQL may walk the newest-first index instead, which is what it picks while the
# table's statistics are stale (a young or fast-growing table) and costs a scan of the organization's leads per
# submission. A branch returns at most a few rows: an address has one original inside the window (later ones are
# duplicates of it), so the oldest is picked here.
_MATCH_COLUMNS = "id, source, external_id, received_at, duplicate_of_id, full_name, first_name, last_name, email, phone"
_MATCH_BRANCHES = {
    "external_id": "SELECT {columns} FROM leads_lead WHERE organization_id = %(organization)s "
    "AND source = %(source)s AND external_id = %(external_id)s AND external_id <> ''",
    "email": "SELECT {columns} FROM leads_lead WHERE organization_id = %(organization)s AND email = %(email)s "
    "AND email <> '' AND duplicate_of_id IS NULL AND received_at >= %(window_start)s",
    "phone": "SELECT {columns} FROM leads_lead WHERE organization_id = %(organization)s AND phone = %(phone)s "
    "AND phone <> '' AND duplicate_of_id IS NULL AND received_at >= %(window_start)s",
}


def _find_match(organization, source: str, fields: dict[str, Any], *, received_at) -> tuple[Lead | None, Lead | None]:
    """(the lead this exact submission already made, the original lead it duplicates) — at most one is set.

    One UNION ALL of single-index lookups (external id, email, phone): an OR across them makes PostgreSQL scan the
    whole table. Hand-written SQL: the ORM would spend more time building this query than the database spends
    answering it, on every submission.
    """
    params = {
        "organization": organization.pk,
        "source": source,
        "external_id": fields.get("external_id") or "",
        "email": fields.get("email") or "",
        "phone": fields.get("phone") or "",
        "window_start": received_at - timedelta(days=organization.duplicate_window_days),
    }
    branches = [sql.format(columns=_MATCH_COLUMNS) for name, sql in _MATCH_BRANCHES.items() if params[name]]
    if not branches:
        return None, None
    candidates = list(Lead.objects.unscoped().raw(" UNION ALL ".join(f"({branch})" for branch in branches), params))
    for lead in candidates:
        if params["external_id"] and lead.source == source and lead.external_id == params["external_id"]:
            return lead, None
    candidates.sort(key=lambda lead: (lead.received_at, lead.pk))
    return None, candidates[0] if candidates else None


def _finish(submission: InboundSubmission, status: str, *, lead: Lead | None = None, error: dict | None = None) -> None:
    now = timezone.now()
    error = json_safe(error)  # messages may quote what the sender sent, NULs included
    InboundSubmission.objects.unscoped().filter(pk=submission.pk).update(
        status=status, lead=lead, error=error, processed_at=now, attempts=F("attempts") + 1
    )
    submission.status, submission.lead, submission.error, submission.processed_at = status, lead, error, now
    submission.attempts += 1


def submissions_reprocess(
    *, status: str | None = SubmissionStatus.FAILED, since=None, until=None, organization=None, limit: int | None = None
):
    """Process stored submissions again; yields each outcome. Accepted and duplicate ones are never reprocessed."""
    statuses = [status] if status else [SubmissionStatus.RECEIVED, SubmissionStatus.FAILED, SubmissionStatus.REJECTED]
    if any(s in (SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE) for s in statuses):
        raise ValueError("accepted and duplicate submissions already made their lead")
    queryset = (
        InboundSubmission.objects.unscoped()
        .filter(status__in=statuses)
        .select_related("organization")
        .order_by("received_at", "id")
    )
    if since is not None:
        queryset = queryset.filter(received_at__gte=since)
    if until is not None:
        queryset = queryset.filter(received_at__lt=until)
    if organization is not None:
        queryset = queryset.filter(organization=organization)
    if limit:
        queryset = queryset[:limit]
    for submission in queryset.iterator(chunk_size=200):
        yield submission_process(submission)
