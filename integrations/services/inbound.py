"""Inbound leads from connections: authenticate, store the raw payload first, then the one intake pipeline.

Every entry point follows the same order: the raw body is stored as an ``InboundSubmission`` before anything can
fail (a request whose signature does not verify too: stored, rejected by the provider's mapper, never processed
into a lead), then ``submission_process`` maps, validates, deduplicates and creates. Re-deliveries make no second
lead: Facebook and generic webhooks use the submission's idempotency key, Google Ads and Facebook the lead's
``external_id`` (the provider's lead id), which the pipeline matches under an advisory lock.

Facebook notifications carry ids only: each ``leadgen`` change is stored as its own submission (its ``value``
object, ids as strings) and a task fetches the lead. The stored change stays replayable: processing it again (the
stuck-submission sweep, ``reprocess_submissions``, the API's replay) makes the Facebook mapper fetch the lead.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from leadflow.exceptions import ServiceError
from leads.constants import SubmissionStatus
from leads.intake.pipeline import IntakeOutcome, body_digest, submission_process, submission_store
from leads.models import InboundSubmission

from ..constants import (
    FACEBOOK_FETCH_RETRY_DELAYS,
    FACEBOOK_SYNC_OVERLAP,
    LINKEDIN_SYNC_OVERLAP,
    ConnectionStatus,
    IntegrationProvider,
)
from ..models import IntegrationConnection
from ..providers import facebook, generic, google_ads
from ..selectors.connections import connection_by_id, facebook_connections_for_page
from .connections import connection_create, connection_record_failure, connection_record_success, connection_update

logger = logging.getLogger(__name__)

MADE_A_LEAD = (SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE)


class InboundSignatureInvalid(Exception):
    """The request did not prove it came from the provider. It was stored (``submission_ids``) but not processed."""

    def __init__(self, message: str, *, submission_ids: list[int] | None = None):
        super().__init__(message)
        self.message = message
        self.submission_ids = submission_ids or []


class InboundInProgress(Exception):
    """The same delivery (idempotency key) is still being processed: the sender should retry in a moment."""

    def __init__(self, submission_id: int):
        super().__init__(submission_id)
        self.submission_id = submission_id


class InboundPayloadInvalid(Exception):
    """The body could not be read at all (not JSON where JSON is required)."""


def inbound_connection_for_token(*, public_token: str, provider: str) -> IntegrationConnection | None:
    """The receiving connection a URL token names, or None (unknown, another provider's, or disconnected)."""
    if not public_token:
        return None
    return (
        IntegrationConnection.objects.unscoped()
        .select_related("organization")
        .filter(public_token=public_token, provider=provider, organization__is_active=True)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .first()
    )


def _context(connection: IntegrationConnection, **extra: Any) -> dict[str, Any]:
    return {"connection_id": connection.pk, "provider": connection.provider, **extra}


def _record_outcome(connection: IntegrationConnection, outcome: IntakeOutcome) -> None:
    if outcome.status in MADE_A_LEAD:
        connection_record_success(connection=connection)
        return
    errors = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in outcome.errors.items())
    connection_record_failure(
        connection=connection, error=f"Submission {outcome.submission.pk} {outcome.status}: {errors}"
    )


def _store_unverified(connection: IntegrationConnection, *, raw_body: bytes, **store: Any) -> InboundSubmission:
    """Keep what failed authentication (for the log and the page), processed only to be rejected by the mapper."""
    submission, _ = submission_store(
        organization=connection.organization,
        source=connection.provider,
        raw_body=raw_body,
        context=_context(connection, signature_valid=False),
        **store,
    )
    submission_process(submission)
    return submission


def _replayed(submission: InboundSubmission) -> IntakeOutcome:
    lead = submission.lead
    original = lead.duplicate_of if lead is not None and lead.duplicate_of_id else lead
    errors = (submission.error or {}).get("errors", {})
    return IntakeOutcome(submission, submission.status, lead=lead, original=original, errors=errors)


# Generic webhooks ---------------------------------------------------------------------------------------------------


def _generic_payload(raw_body: bytes, content_type: str) -> Any:
    """None lets the pipeline parse the stored body (JSON or form); a one-item JSON list is unwrapped first."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        return None
    try:
        parsed = json.loads(raw_body or b"null")
    except ValueError:
        return None
    if isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], dict):
        return parsed[0]
    return parsed if isinstance(parsed, dict) else None


def generic_webhook_receive(
    *,
    connection: IntegrationConnection,
    raw_body: bytes,
    content_type: str,
    headers,
    remote_ip: str | None = None,
    idempotency_key: str = "",
) -> IntakeOutcome:
    """One lead from Zapier, Pabbly, n8n, Make or a custom site. Raises ``InboundSignatureInvalid`` when the
    connection has an HMAC secret and the request is not signed with it."""
    store = {"content_type": content_type, "headers": headers, "remote_ip": remote_ip}
    secret = connection.credential("hmac_secret")
    if secret and not generic.webhook_signature_valid(secret=secret, body=raw_body, headers=headers):
        submission = _store_unverified(connection, raw_body=raw_body, **store)
        logger.warning("generic webhook %s: bad or missing signature (submission %s)", connection.pk, submission.pk)
        connection_record_failure(connection=connection, error="A request arrived without a valid signature.")
        raise InboundSignatureInvalid("The signature did not verify.", submission_ids=[submission.pk])

    # Tools retry with the same body: the body's digest (or the sender's Idempotency-Key) makes one submission.
    key = f"webhook:{connection.pk}:{idempotency_key or body_digest(raw_body)}"
    submission, created = submission_store(
        organization=connection.organization,
        source=IntegrationProvider.WEBHOOK,
        raw_body=raw_body,
        context=_context(connection),
        idempotency_key=key,
        **store,
    )
    if not created and submission.status in MADE_A_LEAD:
        return _replayed(submission)
    if not created and submission.status == SubmissionStatus.RECEIVED:
        # The same delivery is being processed right now; processing it twice could make a duplicate lead.
        raise InboundInProgress(submission.pk)
    outcome = submission_process(submission, payload=_generic_payload(raw_body, content_type))
    _record_outcome(connection, outcome)
    return outcome


# Google Ads lead forms ----------------------------------------------------------------------------------------------


def google_ads_lead_receive(
    *, connection: IntegrationConnection, raw_body: bytes, headers, remote_ip: str | None = None
) -> IntakeOutcome:
    store = {"content_type": "application/json", "headers": headers, "remote_ip": remote_ip}
    try:
        payload = json.loads(raw_body)
    except ValueError:
        payload = None
    given_key = payload.get("google_key") if isinstance(payload, dict) else None
    if not google_ads.google_key_valid(expected=connection.credential("google_key"), given=given_key):
        submission = _store_unverified(connection, raw_body=raw_body, **store)
        logger.warning("google ads connection %s: wrong google_key (submission %s)", connection.pk, submission.pk)
        connection_record_failure(connection=connection, error="A lead arrived with a google_key that does not match.")
        raise InboundSignatureInvalid("The google_key does not match this connection.", submission_ids=[submission.pk])
    is_test = isinstance(payload, dict) and payload.get("is_test") is True
    submission, _ = submission_store(
        organization=connection.organization,
        source=IntegrationProvider.GOOGLE_ADS,
        raw_body=raw_body,
        context=_context(connection, is_test=is_test),
        **store,
    )
    outcome = submission_process(submission, payload=payload)
    _record_outcome(connection, outcome)
    return outcome


# Facebook Lead Ads --------------------------------------------------------------------------------------------------


@dataclass
class FacebookReceipt:
    submission_ids: list[int] = field(default_factory=list)
    queued: int = 0
    unknown_pages: list[str] = field(default_factory=list)


def _facebook_connections_by_page(page_ids: set[str]) -> dict[str, list[IntegrationConnection]]:
    found = {page_id: facebook_connections_for_page(page_id) for page_id in page_ids}
    return {page_id: connections for page_id, connections in found.items() if connections}


def facebook_notification_receive(
    *, raw_body: bytes, signature_header: str | None, app_secret: str, headers, remote_ip: str | None = None
) -> FacebookReceipt:
    """Store every ``leadgen`` change for each connection of its page and queue the fetch of its lead."""
    from ..tasks import fetch_facebook_lead

    signature_valid = facebook.app_signature_valid(app_secret=app_secret, body=raw_body, header=signature_header)
    try:
        notification = facebook.parse_ids_preserving(raw_body)
    except ValueError as error:
        if not signature_valid:
            logger.warning("facebook webhook: bad signature on an unreadable body")
            raise InboundSignatureInvalid("The X-Hub-Signature-256 did not verify.") from None
        raise InboundPayloadInvalid(f"The body is not JSON: {error}") from None
    changes = facebook.leadgen_changes(notification)
    by_page = _facebook_connections_by_page({change.page_id for change in changes})
    store = {"content_type": "application/json", "headers": headers, "remote_ip": remote_ip}
    receipt = FacebookReceipt(unknown_pages=sorted({c.page_id for c in changes} - set(by_page)))

    if not signature_valid:
        # Kept once per organization the body claims to be for, so its owners can see what was refused.
        seen: set[int] = set()
        for connections in by_page.values():
            for connection in connections:
                if connection.organization_id in seen:
                    continue
                seen.add(connection.organization_id)
                receipt.submission_ids.append(_store_unverified(connection, raw_body=raw_body, **store).pk)
        logger.warning("facebook webhook: bad X-Hub-Signature-256 (stored as %s)", receipt.submission_ids)
        raise InboundSignatureInvalid("The X-Hub-Signature-256 did not verify.", submission_ids=receipt.submission_ids)

    for change in changes:
        for connection in by_page.get(change.page_id, []):
            submission, created = submission_store(
                organization=connection.organization,
                source=IntegrationProvider.FACEBOOK,
                raw_body=json.dumps(change.as_dict()),
                context=_context(connection, **change.as_dict()),
                idempotency_key=f"facebook:{change.leadgen_id}",
                **store,
            )
            receipt.submission_ids.append(submission.pk)
            # A re-delivery queues nothing while the first fetch is pending (status received: its task, or the
            # stuck-submission sweep, finishes it); a failed or rejected one is fetched again.
            if created or submission.status in (SubmissionStatus.FAILED, SubmissionStatus.REJECTED):
                # submission_store committed the row on its own, so the worker finds it.
                fetch_facebook_lead.apply_async((submission.pk,), {"queued_at": time.time()})
                receipt.queued += 1
    if receipt.unknown_pages:
        logger.info("facebook webhook: leads for pages with no connection: %s", receipt.unknown_pages)
    return receipt


@dataclass(frozen=True)
class FacebookFetchResult:
    status: str
    retry_in: timedelta | None = None


def facebook_fetch_retry_delay(attempt: int) -> timedelta | None:
    """The wait before retry number ``attempt + 1``, or None when the schedule is spent."""
    return FACEBOOK_FETCH_RETRY_DELAYS[attempt] if attempt < len(FACEBOOK_FETCH_RETRY_DELAYS) else None


def _submission_mark_failed(submission: InboundSubmission, detail: str) -> None:
    # The intake has no public "failed before processing" call; this writes the same columns its own failure
    # path does, only while the submission has not made a lead.
    now = timezone.now()
    InboundSubmission.objects.unscoped().filter(
        pk=submission.pk, status__in=[SubmissionStatus.RECEIVED, SubmissionStatus.FAILED]
    ).update(
        status=SubmissionStatus.FAILED,
        error={"detail": detail[:2000], "failed_at": now.isoformat()},
        processed_at=now,
        attempts=F("attempts") + 1,
    )


def facebook_submission_fetch_and_process(*, submission_id: int, attempt: int = 0) -> FacebookFetchResult:
    """Fetch a notified lead and process it; safe to run twice (a submission that made its lead is left alone)."""
    submission = InboundSubmission.objects.unscoped().select_related("organization").filter(pk=submission_id).first()
    if submission is None or submission.status in MADE_A_LEAD:
        return FacebookFetchResult(status="done")
    connection = connection_by_id(submission.context.get("connection_id"), organization_id=submission.organization_id)
    token = connection.credential("page_access_token") if connection is not None else ""
    if connection is None or connection.status == ConnectionStatus.DISCONNECTED or not token:
        _submission_mark_failed(submission, "The Facebook page is not connected (no page access token).")
        return FacebookFetchResult(status=SubmissionStatus.FAILED)
    try:
        lead = facebook.lead_fetch(leadgen_id=submission.context["leadgen_id"], access_token=token)
    except facebook.GraphError as error:
        retry_in = facebook_fetch_retry_delay(attempt) if error.retryable else None
        if retry_in is not None:
            logger.info("facebook lead %s: %s; retrying in %s", submission.pk, error.message, retry_in)
            return FacebookFetchResult(status=SubmissionStatus.RECEIVED, retry_in=retry_in)
        _submission_mark_failed(submission, f"Facebook did not return the lead after {attempt + 1} tries: {error}")
        connection_record_failure(connection=connection, error=error.message, auth_error=error.is_auth_error)
        return FacebookFetchResult(status=SubmissionStatus.FAILED)
    outcome = submission_process(submission, payload=lead)
    connection_record_success(connection=connection)  # the token worked, whatever the lead's fields were
    return FacebookFetchResult(status=outcome.status)


def facebook_page_connect(
    *, organization, page_access_token: str, name: str = "", actor=None, request=None
) -> IntegrationConnection:
    """Connect a page by its access token: check it, subscribe the app to the page's leads, store it encrypted."""
    page_access_token = (page_access_token or "").strip()
    if not page_access_token:
        raise ServiceError("Paste the page access token.", field="page_access_token")
    try:
        page = facebook.page_fetch(access_token=page_access_token)
        facebook.page_subscribe(page_id=str(page["id"]), access_token=page_access_token)
    except facebook.GraphError as error:
        raise ServiceError(f"Facebook refused the token: {error.message}", field="page_access_token") from None
    page_id = str(page["id"])
    existing = (
        IntegrationConnection.objects.unscoped()
        .filter(organization=organization, provider=IntegrationProvider.FACEBOOK, external_account_id=page_id)
        .first()
    )
    if existing is not None:
        connection = connection_update(
            connection=existing,
            name=name or page.get("name") or existing.name,
            credentials={"page_access_token": page_access_token},
            settings={"page_name": page.get("name", "")},
            actor=actor,
            request=request,
        )
        if connection.status != ConnectionStatus.CONNECTED:
            from .connections import connection_reconnect

            connection = connection_reconnect(connection=connection, actor=actor, request=request)
        return connection
    return connection_create(
        organization=organization,
        provider=IntegrationProvider.FACEBOOK,
        name=name or page.get("name") or f"Page {page_id}",
        credentials={"page_access_token": page_access_token},
        settings={"page_name": page.get("name", "")},
        external_account_id=page_id,
        actor=actor,
        request=request,
    )


def _facebook_store_fetched_lead(connection: IntegrationConnection, lead: dict, *, form_id: str) -> str:
    lead_id = str(lead.get("id") or "")
    if not lead_id:
        return "skipped"
    context = _context(
        connection, page_id=connection.external_account_id, form_id=form_id, leadgen_id=lead_id, via="sync"
    )
    submission, created = submission_store(
        organization=connection.organization,
        source=IntegrationProvider.FACEBOOK,
        raw_body=json.dumps(lead),
        context=context,
        idempotency_key=f"facebook:{lead_id}",
    )
    if not created and submission.status in MADE_A_LEAD:
        return "seen"  # notified and fetched before, or pulled by an earlier sync
    return submission_process(submission, payload=lead).status


def facebook_connection_sync(*, connection: IntegrationConnection, since=None) -> int:
    """Pull the page's leads created since the last sync; returns how many made a new lead."""
    token = connection.credential("page_access_token")
    if not token or connection.status == ConnectionStatus.DISCONNECTED:
        return 0
    started = timezone.now()
    since = since or (connection.last_synced_at or connection.created_at) - FACEBOOK_SYNC_OVERLAP
    created = 0
    try:
        form_ids = connection.settings.get("form_ids") or [
            str(form["id"]) for form in facebook.page_forms(page_id=connection.external_account_id, access_token=token)
        ]
        for form_id in form_ids:
            for lead in facebook.form_leads_since(
                form_id=form_id, access_token=token, since_unix=int(since.timestamp())
            ):
                if _facebook_store_fetched_lead(connection, lead, form_id=form_id) == SubmissionStatus.ACCEPTED:
                    created += 1
    except facebook.GraphError as error:
        connection_record_failure(connection=connection, error=f"Sync: {error.message}", auth_error=error.is_auth_error)
        return created
    IntegrationConnection.objects.unscoped().filter(pk=connection.pk).update(last_synced_at=started)
    connection.last_synced_at = started
    connection_record_success(connection=connection)
    return created


def facebook_connections_sync(*, organization=None, since=None) -> int:
    connections = (
        IntegrationConnection.objects.unscoped()
        .select_related("organization")
        .filter(provider=IntegrationProvider.FACEBOOK, organization__is_active=True)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .exclude(external_account_id="")
    )
    if organization is not None:
        connections = connections.filter(organization=organization)
    return sum(facebook_connection_sync(connection=connection, since=since) for connection in connections)


# Previews and tests from the Integrations page -----------------------------------------------------------------------


@dataclass
class MappingPreview:
    payload: Any = None
    shaped: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def generic_mapping_preview(
    *, connection: IntegrationConnection, submission: InboundSubmission | None, mapping: dict, defaults: dict
) -> MappingPreview:
    """What a stored payload becomes under a mapping (not saved): the shaped payload, the clean fields, the errors.
    Nothing is written."""
    from leads.intake.mapping import clean_lead_fields
    from leads.intake.normalize import NormalizationError
    from leads.intake.pipeline import parse_body

    preview = MappingPreview()
    if submission is None:
        return preview
    try:
        preview.payload = _generic_payload(submission.raw_body.encode(), submission.content_type)
        if preview.payload is None:
            preview.payload = parse_body(submission)
    except NormalizationError as error:
        preview.errors = {"non_field_errors": [str(error)]}
        return preview
    if not isinstance(preview.payload, dict):
        preview.errors = {"non_field_errors": ["The payload is not a JSON object."]}
        return preview
    preview.shaped = generic.apply_mapping(preview.payload, mapping=mapping, defaults=defaults)
    preview.fields, preview.errors = clean_lead_fields(
        preview.shaped, organization=connection.organization, source=IntegrationProvider.WEBHOOK
    )
    preview.fields = {name: value for name, value in preview.fields.items() if value not in (None, "", [], {})}
    return preview


@dataclass(frozen=True)
class TestResult:
    ok: bool
    message: str
    outcome: IntakeOutcome | None = None


def connection_send_test(*, connection: IntegrationConnection) -> TestResult:
    """Send a sample lead through the connection's own receiving path (signed as the provider would), or for
    Facebook check the page token. Test leads carry the ``test-lead`` tag."""
    import uuid

    sample = uuid.uuid4().hex[:10]
    if connection.provider == IntegrationProvider.FACEBOOK:
        try:
            page = facebook.page_fetch(access_token=connection.credential("page_access_token"))
        except facebook.GraphError as error:
            connection_record_failure(connection=connection, error=error.message, auth_error=error.is_auth_error)
            return TestResult(False, f"Facebook refused the page token: {error.message}")
        connection_record_success(connection=connection)
        return TestResult(True, f"The token works for the page “{page.get('name', page.get('id'))}”.")
    if connection.provider == IntegrationProvider.GOOGLE_ADS:
        payload = {
            "lead_id": f"TeSter-LeadFlow-{sample}",
            "api_version": "1.0",
            "form_id": 0,
            "campaign_id": 0,
            "google_key": connection.credential("google_key"),
            "is_test": True,
            "user_column_data": [
                {"column_name": "Full Name", "string_value": "Test Lead", "column_id": "FULL_NAME"},
                {"column_name": "User Email", "string_value": f"test-{sample}@example.com", "column_id": "EMAIL"},
            ],
        }
        outcome = google_ads_lead_receive(
            connection=connection, raw_body=json.dumps(payload).encode(), headers={"User-Agent": "LeadFlow test"}
        )
    elif connection.provider == IntegrationProvider.WEBHOOK:
        body = json.dumps(
            {"name": "Test Lead", "email": f"test-{sample}@example.com", "tags": [google_ads.TEST_LEAD_TAG]}
        ).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "LeadFlow test"}
        if connection.credential("hmac_secret"):
            headers["X-LeadFlow-Signature"] = generic.webhook_signature(
                secret=connection.credential("hmac_secret"), body=body
            )
        outcome = generic_webhook_receive(
            connection=connection, raw_body=body, content_type="application/json", headers=headers
        )
    else:
        return TestResult(False, "This kind of connection has no test yet.")
    if outcome.status in MADE_A_LEAD:
        return TestResult(True, f"Test lead received: {outcome.status} (submission {outcome.submission.pk}).", outcome)
    return TestResult(False, f"The test lead was {outcome.status}: {outcome.errors}", outcome)


# LinkedIn Lead Gen -------------------------------------------------------------------------------------------------


def linkedin_connection_sync(*, connection: IntegrationConnection, since=None) -> int:
    """Pull the sponsored account's form responses submitted since the last sync; returns how many made a new lead.
    Each response is stored (idempotency key ``linkedin:<response id>``) with its form's question table."""
    from ..providers import linkedin

    token = connection.credential("access_token")
    account = connection.settings.get("sponsored_account") or connection.external_account_id
    if not token or not account or connection.status == ConnectionStatus.DISCONNECTED:
        return 0
    started = timezone.now()
    since = since or (connection.last_synced_at or connection.created_at) - LINKEDIN_SYNC_OVERLAP
    created = 0
    forms: dict[str, dict] = {}
    try:
        for response in linkedin.form_responses_since(
            access_token=token,
            sponsored_account=account,
            since_ms=int(since.timestamp() * 1000),
            until_ms=int(started.timestamp() * 1000),
        ):
            response_id = str(response.get("id") or "")
            if not response_id:
                continue
            form_id = linkedin.form_id_of(response)
            if form_id and form_id not in forms:
                forms[form_id] = linkedin.question_fields(linkedin.lead_form(access_token=token, form_id=form_id))
            submission, made = submission_store(
                organization=connection.organization,
                source=IntegrationProvider.LINKEDIN,
                raw_body=json.dumps(response),
                context=_context(connection, form_id=form_id, questions=forms.get(form_id, {})),
                idempotency_key=f"linkedin:{response_id}",
            )
            if not made and submission.status in MADE_A_LEAD:
                continue
            if submission_process(submission, payload=response).status == SubmissionStatus.ACCEPTED:
                created += 1
    except linkedin.LinkedInError as error:
        connection_record_failure(connection=connection, error=f"Sync: {error.message}", auth_error=error.is_auth_error)
        return created
    IntegrationConnection.objects.unscoped().filter(pk=connection.pk).update(last_synced_at=started)
    connection.last_synced_at = started
    connection_record_success(connection=connection)
    return created


def linkedin_connections_sync(*, organization=None, since=None) -> int:
    connections = (
        IntegrationConnection.objects.unscoped()
        .select_related("organization")
        .filter(provider=IntegrationProvider.LINKEDIN, organization__is_active=True)
        .exclude(status=ConnectionStatus.DISCONNECTED)
    )
    if organization is not None:
        connections = connections.filter(organization=organization)
    return sum(linkedin_connection_sync(connection=connection, since=since) for connection in connections)
