"""Leads posted to a campaign through the supplier ingest API (``POST /api/v1/leads/ingest/``).

The ingest view calls two functions around the one intake pipeline, which itself knows nothing of campaigns:

* ``ingest_target_for`` — before: which campaign the lead is for (the body's ``campaign`` id, or the supplier's
  only campaign when the API key belongs to a supplier) and which supplier sent it. A supplier's key posts only to
  that supplier's campaigns. The campaign id travels in the submission's context, so the category's field schema
  validates ``custom`` (through ``register_schema_provider``) now and whenever the submission is processed again.
* ``ingest_finish`` — after the lead's transaction committed: records the ``CampaignSubmission`` (the supplier's
  statistics and payout), distributes a new lead with ``lead_distribute`` and returns the outcome the response
  reports. A duplicate or a re-delivery reports the stored outcome and never sells again; a lead tagged
  ``test-lead`` is never sold or paid for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from accounts.models import ApiKey
from leadflow.caching import ProcessCache
from leadflow.exceptions import PermissionDeniedError, ServiceError
from leadflow.sql import ASYNC_COMMIT, PreparedStatement, fetch_prepared
from leadflow.wakeups import wakeups_held
from leads.constants import SubmissionStatus
from leads.intake.mapping import standard_shape
from leads.intake.pipeline import lead_intake

from .constants import TEST_LEAD_TAG, SubmissionOutcome
from .models import ZERO, Campaign, CampaignSubmission, Category, LeadDistribution, Supplier, SupplierApiKey
from .schema import category_json_schema
from .services.distribution import DistributionOutcome, distribution_outcome, lead_distribute

logger = logging.getLogger(__name__)

CAMPAIGN_KEY = "campaign"  # the supplier API's top-level key naming the campaign (never a custom field)


# The supplier behind an API key --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplierInfo:
    id: int
    name: str
    is_active: bool
    payout_per_lead: Any
    campaign_ids: frozenset[int]


# Every ingest asks; like API keys themselves, each process remembers the answer briefly (``None`` too: most keys
# belong to no supplier). A change saved in this process is seen at once (signals below), elsewhere within 10 s.
_suppliers: ProcessCache[SupplierInfo] = ProcessCache(seconds=10, remember_missing=True)
# The campaign a request names and its category's schema: read on every ingest, remembered as briefly (the
# distribution reads the campaign again under its lock, so price, status and subscriptions are never stale).
_campaigns: ProcessCache[Campaign] = ProcessCache(seconds=10)


def suppliers_forget(**kwargs) -> None:
    _suppliers.forget()


def campaigns_forget(**kwargs) -> None:
    _campaigns.forget()


for _sender in (Supplier, SupplierApiKey):
    post_save.connect(suppliers_forget, sender=_sender, dispatch_uid=f"forget-suppliers-{_sender.__name__}")
    post_delete.connect(suppliers_forget, sender=_sender, dispatch_uid=f"forget-suppliers-del-{_sender.__name__}")
m2m_changed.connect(suppliers_forget, sender=Supplier.campaigns.through, dispatch_uid="forget-suppliers-m2m")
for _sender in (Campaign, Category):
    post_save.connect(campaigns_forget, sender=_sender, dispatch_uid=f"forget-campaigns-{_sender.__name__}")
    post_delete.connect(campaigns_forget, sender=_sender, dispatch_uid=f"forget-campaigns-del-{_sender.__name__}")


def _campaign(campaign_id: int) -> Campaign | None:
    return _campaigns.get(
        campaign_id, lambda: Campaign.objects.unscoped().select_related("category").filter(pk=campaign_id).first()
    )


def campaign_of_organization(*, organization_id: int, campaign_id: int) -> Campaign | None:
    """The organization's campaign (with its category) by id, or ``None``: for entry points with no tenant scope
    (a public hosted form) as much as for those with one."""
    campaign = _campaign(campaign_id)
    return campaign if campaign is not None and campaign.organization_id == organization_id else None


def supplier_for_api_key(api_key: ApiKey) -> SupplierInfo | None:
    def load() -> SupplierInfo | None:
        link = SupplierApiKey.objects.unscoped().select_related("supplier").filter(api_key_id=api_key.pk).first()
        if link is None:
            return None
        supplier = link.supplier
        return SupplierInfo(
            id=supplier.pk,
            name=supplier.name,
            is_active=supplier.is_active,
            payout_per_lead=supplier.payout_per_lead,
            campaign_ids=frozenset(
                Supplier.campaigns.through.objects.filter(supplier_id=supplier.pk).values_list("campaign_id", flat=True)
            ),
        )

    return _suppliers.get(api_key.pk, load)


# Before the pipeline: where the lead goes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestTarget:
    campaign: Campaign
    supplier: SupplierInfo | None = None

    @property
    def context(self) -> dict[str, Any]:
        """Stored with the submission: a replay validates against the same category and routes to the same place."""
        return {"campaign_id": self.campaign.pk, "supplier_id": self.supplier.id if self.supplier else None}


def ingest_target_for(*, organization, api_key: ApiKey | None, data: Any) -> IngestTarget | None:
    """The campaign and supplier of an ingest request, or ``None`` for a lead posted to no campaign.

    Raises ``ServiceError`` on the ``campaign`` field for an unknown campaign or one the supplier may not post to,
    and ``PermissionDeniedError`` for a paused supplier.
    """
    supplier = supplier_for_api_key(api_key) if isinstance(api_key, ApiKey) else None
    if supplier is not None and not supplier.is_active:
        raise PermissionDeniedError("This supplier is paused: its keys cannot post leads.")
    value = data.get(CAMPAIGN_KEY) if hasattr(data, "get") else None
    if value in (None, ""):
        if supplier is None:
            return None
        if len(supplier.campaign_ids) != 1:
            raise ServiceError(
                "Name the campaign: this key's supplier posts to several campaigns."
                if supplier.campaign_ids
                else "This key's supplier has no campaign to post to yet.",
                field=CAMPAIGN_KEY,
            )
        [value] = supplier.campaign_ids
    try:
        campaign_id = int(str(value).strip())
    except (TypeError, ValueError):
        raise ServiceError("Send the campaign's id, a number.", field=CAMPAIGN_KEY) from None
    campaign = campaign_of_organization(organization_id=organization.pk, campaign_id=campaign_id)
    if campaign is None:
        raise ServiceError(f"There is no campaign {campaign_id}.", field=CAMPAIGN_KEY)
    if supplier is not None and campaign.pk not in supplier.campaign_ids:
        raise ServiceError(f"This key's supplier cannot post to campaign {campaign_id}.", field=CAMPAIGN_KEY)
    return IngestTarget(campaign=campaign, supplier=supplier)


def api_payload_shape(payload, context):
    """The supplier API's mapper: the standard shape, minus the top-level ``campaign`` routing key."""
    return standard_shape({key: value for key, value in payload.items() if key != CAMPAIGN_KEY})


def category_schema_for_submission(*, organization, source: str, context: dict[str, Any]) -> dict | None:
    """The JSON Schema of the campaign's category, for ``leads.intake.custom_fields``."""
    campaign_id = (context or {}).get("campaign_id")
    campaign = (
        campaign_of_organization(organization_id=organization.pk, campaign_id=campaign_id) if campaign_id else None
    )
    if campaign is None or not campaign.category.fields:
        return None
    return category_json_schema(campaign.category.fields)


# After the pipeline: record and distribute ----------------------------------------------------------------------------

_OUTCOMES = {
    SubmissionStatus.ACCEPTED: SubmissionOutcome.ACCEPTED,
    SubmissionStatus.DUPLICATE: SubmissionOutcome.DUPLICATE,
    SubmissionStatus.REJECTED: SubmissionOutcome.REJECTED,
    SubmissionStatus.FAILED: SubmissionOutcome.FAILED,
}


def is_test_lead(lead) -> bool:
    return lead is not None and TEST_LEAD_TAG in (lead.tags or [])


def campaign_submission_record(
    *,
    submission,
    campaign_id: int,
    supplier_id: int | None,
    lead,
    status: str,
    payout_per_lead=None,
    flushed_by_what_follows: bool = False,
) -> None:
    """Record what became of a submission posted to a campaign, or bring the record up to date after a replay.

    One statement (an upsert on the submission): a submission's status only moves forward (failed → accepted when
    the intake processes it again), so its latest view is always the one to keep.

    ``flushed_by_what_follows``: the caller commits a synchronous transaction right after (the distribution), so
    this one need not wait for its WAL to reach the disk: that commit flushes this record too, the WAL being
    written in order (as the intake's lead transaction does for the raw submission).
    """
    outcome = _OUTCOMES.get(status, SubmissionOutcome.FAILED)
    is_test = is_test_lead(lead)
    payout = ZERO
    if supplier_id and outcome == SubmissionOutcome.ACCEPTED and not is_test:
        if payout_per_lead is None:
            payout_per_lead = Supplier.objects.unscoped().values_list("payout_per_lead", flat=True).get(pk=supplier_id)
        payout = payout_per_lead
    params = {
        "organization": submission.organization_id,
        "submission": submission.pk,
        "campaign": campaign_id,
        "supplier": supplier_id,
        "lead": lead.pk if lead is not None else None,
        "outcome": outcome.value,
        "is_test": is_test,
        "payout": payout,
        "received_at": submission.received_at,
        "now": timezone.now(),
    }
    # Inside a caller's transaction, that transaction's commit decides.
    asynchronous = flushed_by_what_follows and not connection.in_atomic_block
    fetch_prepared([_RECORD], params, preamble=(ASYNC_COMMIT,) if asynchronous else ())


# An upsert on the submission, as one statement (every ingest to a campaign writes it: no transaction around it).
_RECORD_SQL = f"""
INSERT INTO {CampaignSubmission._meta.db_table}
    (organization_id, submission_id, campaign_id, supplier_id, lead_id, outcome, is_test, payout, created_at,
     updated_at)
VALUES (%(organization)s, %(submission)s, %(campaign)s, %(supplier)s, %(lead)s, %(outcome)s, %(is_test)s, %(payout)s,
        %(received_at)s, %(now)s)
ON CONFLICT (submission_id) DO UPDATE
   SET lead_id = EXCLUDED.lead_id, outcome = EXCLUDED.outcome, is_test = EXCLUDED.is_test, payout = EXCLUDED.payout,
       updated_at = EXCLUDED.updated_at
"""  # noqa: S608 - the table name comes from the model; every value is bound
_RECORD = PreparedStatement(
    _RECORD_SQL,
    {
        "organization": "bigint",
        "submission": "bigint",
        "campaign": "bigint",
        "supplier": "bigint",
        "lead": "bigint",
        "outcome": "varchar",
        "is_test": "boolean",
        "payout": "numeric",
        "received_at": "timestamptz",
        "now": "timestamptz",
    },
)


def outcome_body(outcome: DistributionOutcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "sales": [{"buyer": sale.buyer_id, "price": str(sale.price)} for sale in outcome.sales],
        "revenue": str(outcome.revenue),
        "reasons": outcome.reasons,
        "replayed": outcome.replayed,
    }


def stored_outcome_body(lead, campaign_id: int) -> dict[str, Any] | None:
    distribution = (
        LeadDistribution.objects.unscoped().filter(lead_id=lead.pk, campaign_id=campaign_id).order_by("-round").first()
    )
    return outcome_body(distribution_outcome(distribution, replayed=True)) if distribution else None


def ingest_finish(*, target: IngestTarget, outcome) -> dict[str, Any] | None:
    """Record the submission and, for a new lead, distribute it now; returns the response's ``distribution``.

    ``{"status": "sold"|"unsold", "sales": [{"buyer", "price"}], "revenue", "reasons": {buyer id: reason},
    "replayed"}``; ``{"status": "skipped", "reason": "test_lead"}`` for a test lead; ``{"status": "pending"}``
    when the distribution itself failed (the lead is stored and the sweep distributes it); ``None`` when no lead
    was made (rejected, failed).
    """
    campaign = target.campaign
    lead = outcome.lead
    supplier = target.supplier
    distributes = lead is not None and outcome.status == SubmissionStatus.ACCEPTED and not is_test_lead(lead)

    def record(*, flushed_by_what_follows: bool) -> None:
        campaign_submission_record(
            submission=outcome.submission,
            campaign_id=campaign.pk,
            supplier_id=supplier.id if supplier else None,
            lead=lead,
            status=outcome.status,
            payout_per_lead=supplier.payout_per_lead if supplier else None,
            flushed_by_what_follows=flushed_by_what_follows,
        )

    record(flushed_by_what_follows=distributes)
    if lead is None or outcome.status not in (SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE):
        return None
    if is_test_lead(lead):
        return {"status": "skipped", "reason": "test_lead"}
    if outcome.status == SubmissionStatus.DUPLICATE:
        # Another lead for the same person (or this same submission again): what happened to the original.
        return stored_outcome_body(outcome.original or lead, campaign.pk)
    try:
        return outcome_body(lead_distribute(lead=lead, campaign=campaign))
    except Exception:
        logger.exception("distributing lead %s in campaign %s failed; the sweep will retry", lead.pk, campaign.pk)
        # No distribution committed to flush the record, and the sweep finds the lead by it: written durably now.
        record(flushed_by_what_follows=False)
        return {"status": "pending"}


# Pages that post a lead to a campaign (manual add, hosted forms) -------------------------------------------------------


@dataclass(frozen=True)
class CampaignIntakeResult:
    outcome: Any  # leads.intake.pipeline.IntakeOutcome
    distribution: dict[str, Any] | None  # as ``ingest_finish`` reports it; ``None`` when no lead was made


def campaign_lead_intake(
    *,
    organization,
    campaign: Campaign,
    source: str,
    payload: dict[str, Any],
    context: dict[str, Any] | None = None,
    **intake,
) -> CampaignIntakeResult:
    """A lead for ``campaign`` from one of LeadFlow's own pages, exactly as the supplier API takes one: stored with
    the campaign in its context (so the category's schema validates ``custom`` now and on every replay), then
    recorded and distributed by ``ingest_finish``."""
    if campaign.organization_id != organization.pk:
        raise ServiceError("Pick one of this organization's campaigns.", field=CAMPAIGN_KEY)
    target = IngestTarget(campaign=campaign)
    with wakeups_held():  # as the supplier API does: the worker is woken once the lead is distributed
        outcome = lead_intake(
            organization=organization,
            source=source,
            payload=payload,
            context={**(context or {}), **target.context},
            **intake,
        )
        return CampaignIntakeResult(outcome=outcome, distribution=ingest_finish(target=target, outcome=outcome))


def distribution_summary(distribution: dict[str, Any] | None) -> str:
    """One sentence for a page's message about what the distribution did with a lead."""
    if not distribution:
        return ""
    status = distribution.get("status")
    if status == "sold":
        buyers = len(distribution.get("sales") or [])
        return f"Sold to {buyers} buyer{'s' if buyers != 1 else ''} for {distribution['revenue']}."
    if status == "unsold":
        return "No buyer took it this time (it can be offered again from the campaign)."
    if status == "skipped":
        return "A test lead: never sold."
    if status == "pending":
        return "It will be offered to the campaign's buyers in a few minutes."
    return ""
