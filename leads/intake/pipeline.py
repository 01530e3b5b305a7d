"""The one intake pipeline every source goes through.

1. ``submission_store`` writes the raw payload (committed on its own, before anything can fail);
2. ``submission_process`` maps, normalizes and validates it, deduplicates under advisory locks, creates the lead,
   its first activity and a ``lead.created`` outbox event in one transaction, and records the outcome on the
   submission. A submission that failed or was rejected can be processed again (``manage.py reprocess_submissions``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg.types.json import Jsonb

from leadflow.metrics import intake_outcome_count
from leadflow.sql import ASYNC_COMMIT, InsertStatement, PreparedStatement, execute_prepared
from leadflow.tenancy.context import organization_scope

from ..constants import ActivityKind, LeadSource, StageKind, SubmissionStatus
from ..models import InboundSubmission, Lead, LeadActivity, OutboxEvent, PipelineStage
from ..scoring import RuleScorer, active_rules
from ..services.activity import activity_record
from ..services.leads import lead_rescore
from ..services.outbox import outbox_publish, outbox_wake_on_commit
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
    """Store the payload as received. With an ``idempotency_key`` already used, returns that submission and False.

    Outside any transaction this is one round trip that commits on its own (``SET LOCAL`` and the INSERT sent
    together run as one implicit transaction). Its commit skips the WAL flush wait: the processing transaction
    that follows (or the outcome written when processing fails) flushes the WAL up to and past it before the
    sender gets an answer, so nothing the sender was told is stored can be lost. Inside a caller's transaction it
    is a plain INSERT in that transaction, which keeps the caller's own durability.
    """
    raw_body = storable_text(raw_body)
    idempotency_key = idempotency_key[:255]
    submission = InboundSubmission(
        organization=organization,
        source=source,
        raw_body=raw_body,
        content_type=(content_type or "")[:120],
        headers=safe_headers(headers or {}),
        context=context or {},
        remote_ip=remote_ip,
        idempotency_key=idempotency_key,
        body_sha256=body_digest(raw_body),
    )
    outside_any_transaction = not connection.in_atomic_block
    row = execute_prepared(
        [_submission_insert(conflict=bool(idempotency_key))],
        _submission_insert_statement().params(submission),
        preamble=(ASYNC_COMMIT,) if outside_any_transaction else (),
        atomic=False,
    )
    if row is None:  # the key was used before: that first submission answers
        existing = InboundSubmission.objects.unscoped().get(organization=organization, idempotency_key=idempotency_key)
        return existing, False
    submission.pk = row[0]
    submission._state.adding = False
    submission._state.db = connection.alias
    return submission, True


# The partial unique index on (organization, idempotency_key): a key used before inserts nothing.
_IDEMPOTENCY_CONFLICT = "ON CONFLICT (organization_id, idempotency_key) WHERE NOT (idempotency_key = '') DO NOTHING"


@functools.cache
def _submission_insert_statement() -> InsertStatement:
    return InsertStatement(InboundSubmission)


@functools.cache
def _submission_insert(*, conflict: bool) -> PreparedStatement:
    sql = _submission_insert_statement().sql(suffix=_IDEMPOTENCY_CONFLICT if conflict else "")
    return PreparedStatement(sql, {"row": "jsonb"})


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
    outcome = _submission_process(submission, payload=payload, actor=actor, tags=tags)
    intake_outcome_count(source=submission.source, status=outcome.status)
    return outcome


def _submission_process(submission: InboundSubmission, *, payload: Any, actor, tags: list[str] | None) -> IntakeOutcome:
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


def _create_or_match(submission: InboundSubmission, fields: dict[str, Any], actor) -> IntakeOutcome:
    organization = submission.organization
    source = submission.source
    lead = Lead(organization=organization, source=source, received_at=submission.received_at, **fields)
    # Born with its score: scoring later would write every lead twice (and all its indexes with it).
    lead_rescore(lead, rules=active_rules(organization.pk), scorer=RuleScorer(), save=False)
    keys = sorted(
        {
            _lock_key(organization.pk, kind, value)
            for kind, value in (
                ("email", fields.get("email")),
                ("phone", fields.get("phone")),
                (f"ext:{source}", fields.get("external_id")),
            )
            if value
        }
    )
    match = _match_params(organization, source, fields, received_at=submission.received_at)
    message = f"Received from {LeadSource(source).label}"
    # Most leads match nothing: locked, checked and written in one round trip.
    if _insert_unless_matched(submission, lead, keys=keys, match=match, actor=actor, message=message, lock=True):
        return IntakeOutcome(submission, SubmissionStatus.ACCEPTED, lead=lead)
    # Something matched (a re-delivery or a duplicate): decided again under the same locks, with every rule.
    with transaction.atomic():
        _advisory_locks(keys)
        redelivered, original = _find_match(match)
        if redelivered is not None:
            original = redelivered.duplicate_of or redelivered
            _finish(submission, SubmissionStatus.DUPLICATE, lead=redelivered)
            return IntakeOutcome(submission, SubmissionStatus.DUPLICATE, lead=redelivered, original=original)
        if original is None:  # what matched a moment ago is gone
            if _insert_unless_matched(submission, lead, keys=keys, match=match, actor=actor, message=message):
                return IntakeOutcome(submission, SubmissionStatus.ACCEPTED, lead=lead)
            raise RuntimeError("the lead matched nothing and still was not inserted")
        lead.duplicate_of = original
        _lead_insert_returning(lead)
        Lead.objects.filter(pk=original.pk).update(duplicate_count=F("duplicate_count") + 1)
        activity_record(
            lead=lead,
            kind=ActivityKind.DUPLICATE,
            actor=actor,
            message=f"Duplicate of {original.display_name} received from {LeadSource(source).label}",
            data={"original_id": original.pk, "submission_id": submission.pk},
        )
        outbox_publish(
            organization=organization, topic="lead.duplicate", payload={"lead_id": lead.pk, "original_id": original.pk}
        )
        _finish(submission, SubmissionStatus.DUPLICATE, lead=lead)
    return IntakeOutcome(submission, SubmissionStatus.DUPLICATE, lead=lead, original=original)


def _lock_key(*parts: Any) -> int:
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Identical submissions arriving at once serialize on these, so the second sees the first's lead. A statement of
# its own: in READ COMMITTED each statement sees what was committed when it started, so the lookup that follows
# must start after the locks are granted.
_ADVISORY_LOCKS_SQL = "SELECT pg_advisory_xact_lock(k) FROM unnest(%(lock_keys)s::bigint[]) AS k ORDER BY k"
_ADVISORY_LOCKS = PreparedStatement(_ADVISORY_LOCKS_SQL, {"lock_keys": "bigint[]"})


def _advisory_locks(keys: list[int]) -> None:
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(_ADVISORY_LOCKS_SQL, {"lock_keys": keys})


# The first open stage, looked up inside the INSERT rather than in a round trip of its own.
_FIRST_OPEN_STAGE_SQL = (
    f"(SELECT id FROM {PipelineStage._meta.db_table} WHERE organization_id = incoming.organization_id "  # noqa: S608
    f"AND kind = '{StageKind.OPEN.value}' ORDER BY position, id LIMIT 1)"
)


@functools.cache
def _lead_insert() -> InsertStatement:
    return InsertStatement(Lead, expressions={"stage_id": _FIRST_OPEN_STAGE_SQL}, param="lead")


def _lead_insert_returning(lead: Lead) -> None:
    statement = _lead_insert()
    with connection.cursor() as cursor:
        cursor.execute(statement.sql(), statement.params(lead))
        _saved(lead, cursor.fetchone()[0])


def _saved(lead: Lead, pk: int) -> None:
    lead.pk = pk
    lead._state.adding = False
    lead._state.db = connection.alias
    lead.__dict__.pop("stage_id", None)  # the database chose it: loaded from there if anyone asks


# A new lead and everything it leaves behind, unless the lookup finds a lead it repeats or duplicates: the lead,
# its first timeline entry, its ``lead.created`` outbox event and the submission's outcome (the rows
# ``activity_record``, ``outbox_publish`` and ``_finish`` write), in one statement.
_NEW_LEAD_SQL = """
WITH {candidates}new_lead AS (
    {insert_lead}
), activity AS (
    INSERT INTO {activity} (organization_id, lead_id, kind, actor_id, message, data, created_at)
    SELECT %(organization)s, id, %(kind)s, CAST(%(actor)s AS bigint), %(message)s, %(activity_data)s, %(now)s
      FROM new_lead
), event AS (
    INSERT INTO {outbox} (organization_id, topic, payload, created_at, attempts, last_error)
    SELECT %(organization)s, %(topic)s, jsonb_build_object('lead_id', id), %(now)s, 0, '' FROM new_lead
), outcome AS (
    UPDATE {submission}
       SET status = %(status)s, lead_id = new_lead.id, error = NULL, processed_at = %(now)s, attempts = attempts + 1
      FROM new_lead
     WHERE {submission}.id = %(submission)s
)
SELECT id FROM new_lead
"""


def _insert_unless_matched(
    submission: InboundSubmission, lead: Lead, *, keys: list[int], match: dict, actor, message: str, lock=False
) -> bool:
    """Insert ``lead`` as new unless a lead it repeats or duplicates exists; True when it was inserted.

    With ``lock`` the advisory locks are taken first, in the same round trip.
    """
    statement = _lead_insert()
    now = timezone.now()
    params = {
        **statement.params(lead),
        **match,
        "lock_keys": keys,
        "kind": ActivityKind.CREATED.value,
        "actor": actor.pk if actor else None,
        "message": message[:500],
        "activity_data": Jsonb({"submission_id": submission.pk}),
        "now": now,
        "topic": "lead.created",
        "status": SubmissionStatus.ACCEPTED.value,
        "submission": submission.pk,
    }
    new_lead = _new_lead_statement(tuple(name for name in _MATCH_BRANCHES if match[name]))
    row = execute_prepared([_ADVISORY_LOCKS, new_lead] if lock and keys else [new_lead], params)
    if row is None:
        return False
    _saved(lead, row[0])
    outbox_wake_on_commit(lead.organization_id, "lead.created")  # at once when that was its own transaction
    submission.status, submission.lead, submission.error, submission.processed_at = (
        SubmissionStatus.ACCEPTED,
        lead,
        None,
        now,
    )
    submission.attempts += 1
    return True


# The types of the new-lead statement's parameters, for PREPARE.
_NEW_LEAD_TYPES = {
    "lead": "jsonb",
    "organization": "bigint",
    "source": "text",
    "external_id": "text",
    "email": "text",
    "phone": "text",
    "window_start": "timestamptz",
    "kind": "text",
    "actor": "bigint",
    "message": "text",
    "activity_data": "jsonb",
    "now": "timestamptz",
    "topic": "text",
    "status": "text",
    "submission": "bigint",
}


@functools.cache
def _new_lead_statement(branch_names: tuple[str, ...]) -> PreparedStatement:
    """The new-lead statement looking for matches on ``branch_names`` (the keys the submission has)."""
    branches = [f"({_MATCH_BRANCHES[name].format(columns=_MATCH_COLUMNS)})" for name in branch_names]
    sql = _NEW_LEAD_SQL.format(
        candidates=f"candidate AS ({' UNION ALL '.join(branches)}), " if branches else "",
        insert_lead=_lead_insert().sql(where="NOT EXISTS (SELECT 1 FROM candidate)" if branches else ""),
        activity=LeadActivity._meta.db_table,
        outbox=OutboxEvent._meta.db_table,
        submission=InboundSubmission._meta.db_table,
    )
    return PreparedStatement(sql, _NEW_LEAD_TYPES)


# Each branch reads one index (the unique external id one, the partial email and phone ones). No ORDER BY and no
# LIMIT on purpose: with them PostgreSQL may walk the newest-first index instead, which is what it picks while the
# table's statistics are stale (a young or fast-growing table) and costs a scan of the organization's leads per
# submission. A branch returns at most a few rows: an address has one original inside the window (later ones are
# duplicates of it), so the oldest is picked here. An OR across the three would make PostgreSQL scan the table.
# Hand-written SQL: the ORM would spend more time building this query than the database spends answering it.
_MATCH_COLUMNS = "id, source, external_id, received_at, duplicate_of_id, full_name, first_name, last_name, email, phone"
_MATCH_BRANCHES = {
    "external_id": "SELECT {columns} FROM leads_lead WHERE organization_id = %(organization)s "
    "AND source = %(source)s AND external_id = %(external_id)s AND external_id <> ''",
    "email": "SELECT {columns} FROM leads_lead WHERE organization_id = %(organization)s AND email = %(email)s "
    "AND email <> '' AND duplicate_of_id IS NULL AND received_at >= %(window_start)s",
    "phone": "SELECT {columns} FROM leads_lead WHERE organization_id = %(organization)s AND phone = %(phone)s "
    "AND phone <> '' AND duplicate_of_id IS NULL AND received_at >= %(window_start)s",
}


def _match_params(organization, source: str, fields: dict[str, Any], *, received_at) -> dict[str, Any]:
    return {
        "organization": organization.pk,
        "source": source,
        "external_id": fields.get("external_id") or "",
        "email": fields.get("email") or "",
        "phone": fields.get("phone") or "",
        "window_start": received_at - timedelta(days=organization.duplicate_window_days),
    }


def _match_branches(match: dict[str, Any]) -> list[str]:
    return [f"({sql.format(columns=_MATCH_COLUMNS)})" for name, sql in _MATCH_BRANCHES.items() if match[name]]


def _find_match(match: dict[str, Any]) -> tuple[Lead | None, Lead | None]:
    """(the lead this exact submission already made, the original lead it duplicates) — at most one is set."""
    branches = _match_branches(match)
    if not branches:
        return None, None
    candidates = list(Lead.objects.unscoped().raw(" UNION ALL ".join(branches), match))
    for lead in candidates:
        if match["external_id"] and lead.source == match["source"] and lead.external_id == match["external_id"]:
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
