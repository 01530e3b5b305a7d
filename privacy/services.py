"""Privacy writes: exporting and erasing a person's data, the retention policy and applying it.

Every export and erasure is in the audit log with a fingerprint of the identifiers (not the identifiers: the log
must not keep what was just erased) and the number of rows per source. An erasure runs every source in one
transaction: either everything about the person is gone, or nothing changed.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope
from leads.constants import StageKind
from leads.models import InboundSubmission, Lead

from .models import MAX_RETENTION_DAYS, RetentionPolicy
from .registry import PersonTarget, person_data_sources
from .selectors import person_export_document, person_target
from .sources import ERASED_TAG

logger = logging.getLogger(__name__)

RETENTION_BATCH = 500


def identifier_fingerprint(target: PersonTarget) -> str:
    """A short SHA-256 of the identifiers: tells two requests apart in the audit log without holding the email."""
    return hashlib.sha256("|".join(target.identifiers).encode()).hexdigest()[:16]


def person_export(*, organization, email: str = "", phone: str = "", actor=None, request=None) -> dict[str, Any]:
    """Everything the organization holds about the person, as one JSON-able document; audited."""
    target = person_target(organization=organization, email=email, phone=phone)
    document = person_export_document(target)
    audit_record(
        organization=organization,
        action="privacy.exported",
        actor=actor,
        changes={
            "fingerprint": identifier_fingerprint(target),
            "rows": {key: len(rows) for key, rows in document["sources"].items()},
        },
        request=request,
    )
    return document


@transaction.atomic
def person_erase(*, organization, email: str = "", phone: str = "", actor=None, request=None) -> dict[str, int]:
    """Delete or anonymize the person's rows in every source, in one transaction; returns rows changed per source."""
    target = person_target(organization=organization, email=email, phone=phone)
    changed = _erase(target)
    audit_record(
        organization=organization,
        action="privacy.erased",
        actor=actor,
        changes={"fingerprint": identifier_fingerprint(target), "rows": changed},
        request=request,
    )
    logger.info("privacy: erased a person in organization %s: %s", organization.pk, changed)
    return changed


def _erase(target: PersonTarget) -> dict[str, int]:
    with organization_scope(target.organization):
        # Locked first, so an intake or an edit of these leads waits for the erasure instead of racing it.
        list(Lead.objects.unscoped().select_for_update().filter(pk__in=target.lead_ids).values_list("pk", flat=True))
        return {source.key: source.erase(target) for source in reversed(person_data_sources())}


# Retention ----------------------------------------------------------------------------------------------------------


POLICY_FIELDS = ("raw_submissions_days", "webhook_logs_days", "closed_leads_days")


@transaction.atomic
def retention_policy_update(*, organization, actor=None, request=None, **days: int | None) -> RetentionPolicy:
    unknown = set(days) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"unknown retention fields: {sorted(unknown)}")
    for name, value in days.items():
        if value is not None and not 1 <= value <= MAX_RETENTION_DAYS:
            raise ServiceError(f"Between 1 and {MAX_RETENTION_DAYS} days, or empty to keep everything.", field=name)
    policy, _ = RetentionPolicy.objects.unscoped().select_for_update().get_or_create(organization=organization)
    changes = {name: [getattr(policy, name), value] for name, value in days.items() if getattr(policy, name) != value}
    if changes:
        for name, value in days.items():
            setattr(policy, name, value)
        policy.updated_by = actor
        policy.save()
        audit_record(
            organization=organization,
            action="privacy.retention_policy_updated",
            actor=actor,
            target=policy,
            changes=changes,
            request=request,
        )
    return policy


def retention_policy_of(organization) -> RetentionPolicy:
    return RetentionPolicy.objects.unscoped().filter(organization=organization).first() or RetentionPolicy(
        organization=organization
    )


def _expired_submissions(policy: RetentionPolicy, now):
    cutoff = now - timedelta(days=policy.raw_submissions_days)
    return InboundSubmission.objects.unscoped().filter(organization_id=policy.organization_id, received_at__lt=cutoff)


def _expired_imports(policy: RetentionPolicy, now):
    """Uploaded CSV files are raw payloads too (every row as uploaded); finished imports past the cutoff go."""
    from leads.constants import ImportStatus
    from leads.models import LeadImport

    cutoff = now - timedelta(days=policy.raw_submissions_days)
    return LeadImport.objects.unscoped().filter(
        organization_id=policy.organization_id,
        created_at__lt=cutoff,
        status__in=[ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.UPLOADED],
    )


def _expired_webhook_messages(policy: RetentionPolicy, now):
    from integrations.constants import WebhookDeliveryStatus
    from integrations.models import WebhookMessage

    cutoff = now - timedelta(days=policy.webhook_logs_days)
    return (
        WebhookMessage.objects.unscoped()
        .filter(organization_id=policy.organization_id, created_at__lt=cutoff)
        .exclude(deliveries__status=WebhookDeliveryStatus.PENDING)  # still being retried: its log is live
    )


def _expired_closed_leads(policy: RetentionPolicy, now):
    cutoff = now - timedelta(days=policy.closed_leads_days)
    return (
        Lead.objects.unscoped()
        .filter(
            organization_id=policy.organization_id,
            stage__kind__in=[StageKind.WON, StageKind.LOST],
            updated_at__lt=cutoff,
        )
        .exclude(tags__contains=[ERASED_TAG])
    )


def _delete_in_batches(queryset) -> int:
    deleted = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:RETENTION_BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += len(ids)
            queryset.model.objects.unscoped().filter(pk__in=ids).delete()


def _anonymize_in_batches(organization, queryset) -> int:
    anonymized = 0
    while True:
        ids = tuple(queryset.order_by("pk").values_list("pk", flat=True)[:RETENTION_BATCH])
        if not ids:
            return anonymized
        with transaction.atomic():
            # By id only: what is linked to these leads goes; the same person's newer, open leads (and payloads
            # that mention them) are not what the policy is about.
            _erase(PersonTarget(organization=organization, lead_ids=ids))
            anonymized += len(ids)


def retention_apply(*, organization, now=None, dry_run: bool = False) -> dict[str, int]:
    """Apply the organization's policy: how many raw payloads and webhook messages were deleted and closed leads
    anonymized (or, with ``dry_run``, would be). Audited when anything changed."""
    policy = retention_policy_of(organization)
    now = now or timezone.now()
    counts = {"raw_submissions": 0, "csv_imports": 0, "webhook_messages": 0, "closed_leads": 0}
    if policy.pk is None or policy.is_empty:
        return counts
    if policy.raw_submissions_days:
        expired = _expired_submissions(policy, now)
        counts["raw_submissions"] = expired.count() if dry_run else _delete_in_batches(expired)
        expired = _expired_imports(policy, now)
        counts["csv_imports"] = expired.count() if dry_run else _delete_in_batches(expired)
    if policy.webhook_logs_days:
        expired = _expired_webhook_messages(policy, now)
        counts["webhook_messages"] = expired.count() if dry_run else _delete_in_batches(expired)
    if policy.closed_leads_days:
        expired = _expired_closed_leads(policy, now)
        counts["closed_leads"] = expired.count() if dry_run else _anonymize_in_batches(organization, expired)
    if not dry_run and any(counts.values()):
        audit_record(
            organization=organization,
            action="privacy.retention_applied",
            target=policy,
            changes={**counts, "policy": {name: getattr(policy, name) for name in POLICY_FIELDS}},
        )
    return counts


def retention_apply_all(*, now=None, dry_run: bool = False, organizations=None) -> dict[Any, dict[str, int]]:
    """Every organization with a policy (or the ones given): ``{organization: counts}``."""
    from accounts.models import Organization

    if organizations is None:
        with_policy = RetentionPolicy.objects.unscoped().values("organization_id")
        organizations = Organization.objects.filter(pk__in=with_policy).order_by("slug")
    return {
        organization: retention_apply(organization=organization, now=now, dry_run=dry_run)
        for organization in organizations
    }
