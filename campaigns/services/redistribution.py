"""Offering leads again: unsold and returned leads, by hand (a lead, or a campaign's unsold leads) and on a
schedule (beat's ``redistribute_leads``, ``manage.py redistribute_leads``).

The sweep also finishes what an ingest could not: a submission posted to a campaign that failed and was processed
later by the intake's own retries, or a lead whose distribution failed after it was stored, is routed here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.services import audit_record
from leads.constants import SubmissionStatus
from leads.models import Lead

from ..constants import TEST_LEAD_TAG, CampaignStatus, DistributionStatus, SubmissionOutcome
from ..models import Campaign, CampaignSubmission, LeadDistribution
from .distribution import NotRedistributable, TestLeadNotSold, lead_distribute, lead_redistribute

logger = logging.getLogger(__name__)

# An unsold lead is offered again no sooner than this after its last round (caps and schedules need time to open),
# and not once it is older than the age below: buyers want fresh leads.
REDISTRIBUTE_AFTER = timedelta(minutes=15)
REDISTRIBUTE_MAX_AGE = timedelta(days=7)
# Catching up submissions processed late looks this far back.
CATCH_UP_WINDOW = timedelta(days=3)


def _latest_unsold(queryset):
    """Distributions that are their lead's last round in the campaign and sold to nobody."""
    later = LeadDistribution.objects.unscoped().filter(
        lead_id=OuterRef("lead_id"), campaign_id=OuterRef("campaign_id"), round__gt=OuterRef("round")
    )
    return queryset.filter(status=DistributionStatus.UNSOLD).exclude(Exists(later))


def distribution_redistribute(*, distribution: LeadDistribution, actor=None, request=None, now=None):
    """Offer one lead again now (the page's and the API's "Redistribute")."""
    lead = Lead.objects.unscoped().get(pk=distribution.lead_id)
    campaign = Campaign.objects.unscoped().select_related("organization").get(pk=distribution.campaign_id)
    outcome = lead_redistribute(lead=lead, campaign=campaign, now=now)
    audit_record(
        organization=campaign.organization,
        action="lead.redistributed",
        actor=actor,
        target=lead,
        changes={"campaign": campaign.pk, "status": outcome.status, "buyers": [s.buyer_id for s in outcome.sales]},
        request=request,
    )
    return outcome


def campaign_redistribute_unsold(*, campaign: Campaign, actor=None, request=None, limit: int = 500, now=None) -> dict:
    """Offer the campaign's unsold leads again now, oldest first (at most ``limit``); returns what happened."""
    now = now or timezone.now()
    rows = list(
        _latest_unsold(LeadDistribution.objects.unscoped().filter(campaign_id=campaign.pk))
        .filter(round__lt=campaign.redistribute_max_rounds)
        .exclude(lead__tags__contains=[TEST_LEAD_TAG])
        .order_by("created_at", "id")
        .values_list("lead_id", flat=True)[:limit]
    )
    counts = {"offered": 0, "sold": 0, "unsold": 0}
    for lead in Lead.objects.unscoped().filter(pk__in=rows).order_by("received_at", "id"):
        try:
            outcome = lead_redistribute(lead=lead, campaign=campaign, now=now)
        except (NotRedistributable, TestLeadNotSold):
            continue
        counts["offered"] += 1
        counts[outcome.status] += 1
    audit_record(
        organization=campaign.organization,
        action="campaign.redistributed",
        actor=actor,
        target=campaign,
        changes=counts,
        request=request,
    )
    return counts


def _catch_up(now: datetime, limit: int) -> dict[str, int]:
    """Route campaign submissions whose lead was made after the ingest answered (a failure processed later), and
    accepted leads that were never distributed (the distribution failed after the lead was stored)."""
    from ..intake import campaign_submission_record, is_test_lead

    counts = {"caught_up": 0, "distributed": 0}
    pending = (
        CampaignSubmission.objects.unscoped()
        .filter(created_at__gte=now - CATCH_UP_WINDOW)
        .filter(outcome__in=[SubmissionOutcome.FAILED, SubmissionOutcome.REJECTED])
        .filter(submission__status__in=[SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE])
        .select_related("submission__lead")[:limit]
    )
    for row in pending:
        campaign_submission_record(
            submission=row.submission,
            campaign_id=row.campaign_id,
            supplier_id=row.supplier_id,
            lead=row.submission.lead,
            status=row.submission.status,
        )
        counts["caught_up"] += 1
    undistributed = (
        CampaignSubmission.objects.unscoped()
        .filter(created_at__gte=now - CATCH_UP_WINDOW, outcome=SubmissionOutcome.ACCEPTED, is_test=False)
        .filter(lead__isnull=False, campaign__status=CampaignStatus.ACTIVE)
        .exclude(
            Exists(
                LeadDistribution.objects.unscoped().filter(
                    lead_id=OuterRef("lead_id"), campaign_id=OuterRef("campaign_id")
                )
            )
        )
        .select_related("lead", "campaign")[:limit]
    )
    for row in undistributed:
        if is_test_lead(row.lead):
            continue
        try:
            lead_distribute(lead=row.lead, campaign=row.campaign, now=now)
            counts["distributed"] += 1
        except Exception:
            logger.exception("catching up lead %s in campaign %s failed", row.lead_id, row.campaign_id)
    return counts


def leads_redistribute_due(*, now: datetime | None = None, limit: int = 1000, organization=None) -> dict[str, int]:
    """Beat: catch up late submissions, then offer again the unsold leads of campaigns that redistribute, once
    ``REDISTRIBUTE_AFTER`` has passed since their last round, up to each campaign's rounds."""
    now = now or timezone.now()
    counts = _catch_up(now, limit)
    counts.update(offered=0, sold=0, unsold=0)
    campaigns = Campaign.objects.unscoped().filter(auto_redistribute=True, status=CampaignStatus.ACTIVE)
    if organization is not None:
        campaigns = campaigns.filter(organization=organization)
    for campaign in campaigns:
        rows = list(
            _latest_unsold(LeadDistribution.objects.unscoped().filter(campaign_id=campaign.pk))
            .filter(
                round__lt=campaign.redistribute_max_rounds,
                created_at__lte=now - REDISTRIBUTE_AFTER,
                lead__received_at__gte=now - REDISTRIBUTE_MAX_AGE,
            )
            .exclude(lead__tags__contains=[TEST_LEAD_TAG])
            .order_by("created_at", "id")
            .values_list("lead_id", flat=True)[:limit]
        )
        for lead in Lead.objects.unscoped().filter(pk__in=rows):
            try:
                outcome = lead_redistribute(lead=lead, campaign=campaign, now=now)
            except (NotRedistributable, TestLeadNotSold):
                continue
            counts["offered"] += 1
            counts[outcome.status] += 1
    return counts


def lead_resell(*, lead_id: int, campaign_id: int) -> str | None:
    """After an approved return with "resell": offer the lead to the campaign's other buyers."""
    lead = Lead.objects.unscoped().filter(pk=lead_id).first()
    campaign = Campaign.objects.unscoped().filter(pk=campaign_id).first()
    if lead is None or campaign is None:
        return None
    try:
        return lead_redistribute(lead=lead, campaign=campaign).status
    except (NotRedistributable, TestLeadNotSold) as error:
        logger.info("lead %s not resold in campaign %s: %s", lead_id, campaign_id, error)
        return None
