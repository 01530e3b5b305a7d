"""Campaign budgets: recorded ad spend against the daily and total budgets, and the automatic pause.

* Spend is recorded per day of the organization's time zone (``campaign_spend_record``; editing the campaign's
  total spend records the difference as today's). ``Campaign.ad_spend`` is the running total, moved with the row
  under the campaign's lock.
* When the total reaches ``total_budget``, or today's spend reaches ``daily_budget``, the campaign pauses with
  ``PauseReason.BUDGET`` and the owners are notified (messaging's notifications, once per day and budget).
* A budget-paused campaign resumes when its budgets allow it again: the next day for a daily budget (beat's
  ``campaigns_budgets_enforce``, at every quarter hour so each time zone's midnight is caught), or at once when the
  budget is raised or removed. A campaign paused by hand or by billing is never resumed here.

Every decision is taken with the campaign's row locked, so running it twice (a retried task, two workers, a page
and beat at once) pauses, resumes and notifies once.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils import timezone

from accounts.constants import Role
from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope

from ..constants import CampaignStatus, PauseReason
from ..models import ZERO, Campaign, CampaignSpend
from ..selectors import BudgetUsage, campaign_budget_usage, organization_today
from . import catalog

logger = logging.getLogger(__name__)

PAUSED, RESUMED = "paused", "resumed"


def _locked(campaign_id: int) -> Campaign:
    return Campaign.objects.unscoped().select_for_update().select_related("organization").get(pk=campaign_id)


@transaction.atomic
def campaign_spend_record(
    *,
    campaign: Campaign,
    amount: Decimal | str,
    spent_on: date | None = None,
    actor=None,
    request=None,
    now: datetime | None = None,
) -> CampaignSpend:
    """Record ad spend (negative to correct an earlier figure) on ``spent_on`` (today by default, in the
    organization's time zone), then pause the campaign if that spends a budget."""
    try:
        amount = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ServiceError("Enter the amount spent.", field="amount") from None
    if amount == 0:
        raise ServiceError("Enter an amount other than zero.", field="amount")
    campaign = _locked(campaign.pk)
    today = organization_today(campaign.organization, now=now)
    spent_on = spent_on or today
    if spent_on > today:
        raise ServiceError("Spend is recorded for today or an earlier day.", field="spent_on")
    total = campaign.ad_spend + amount
    if total < 0:
        raise ServiceError("That would take the campaign's recorded spend below zero.", field="amount")
    if amount < 0:
        day_total = (
            CampaignSpend.objects.unscoped()
            .filter(campaign_id=campaign.pk, spent_on=spent_on)
            .aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        if day_total + amount < 0:
            raise ServiceError(
                f"Only {day_total} was recorded on {spent_on:%d %b %Y}: a correction cannot take that day below zero.",
                field="amount",
            )
    entry = CampaignSpend.objects.unscoped().create(
        organization_id=campaign.organization_id,
        campaign=campaign,
        spent_on=spent_on,
        amount=amount,
        total_after=total,
        actor=actor,
        created_at=now or timezone.now(),
    )
    Campaign.objects.unscoped().filter(pk=campaign.pk).update(ad_spend=total, updated_at=timezone.now())
    audit_record(
        organization=campaign.organization,
        action="campaign.spend_recorded",
        actor=actor,
        target=campaign,
        changes={
            "amount": str(amount),
            "spent_on": spent_on.isoformat(),
            "ad_spend": [str(campaign.ad_spend), str(total)],
        },
        request=request,
    )
    campaign_budget_enforce(campaign=campaign, now=now)
    return entry


@transaction.atomic
def campaign_budget_enforce(*, campaign: Campaign, now: datetime | None = None, actor=None, request=None) -> str | None:
    """Pause an active campaign whose budget is spent; resume one paused for its budget once the budgets allow it.
    Returns ``"paused"``, ``"resumed"`` or ``None`` (nothing to do, or paused by hand or by billing)."""
    campaign = _locked(campaign.pk)
    with organization_scope(campaign.organization):
        usage = campaign_budget_usage(campaign, now=now)
    if campaign.is_active and usage.reached:
        catalog.campaign_pause(campaign=campaign, reason=PauseReason.BUDGET, actor=actor, request=request)
        _notify_budget_spent(campaign, usage)
        return PAUSED
    if campaign.status == CampaignStatus.PAUSED and campaign.pause_reason == PauseReason.BUDGET and not usage.reached:
        catalog.campaign_resume(
            campaign=campaign, only_if_reason=PauseReason.BUDGET, actor=actor, request=request, now=now
        )
        return RESUMED
    return None


def campaigns_budgets_enforce(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: every campaign with a budget, active or paused for its budget, checked against its organization's
    today — yesterday's daily-budget pauses resume after midnight; a campaign resumed by billing over its budget
    pauses. Each campaign in a transaction of its own, so one failure stops nothing else."""
    counts = {PAUSED: 0, RESUMED: 0}
    campaign_ids = (
        Campaign.objects.unscoped()
        .filter(Q(daily_budget__isnull=False) | Q(total_budget__isnull=False))
        .filter(Q(status=CampaignStatus.ACTIVE) | Q(pause_reason=PauseReason.BUDGET))
        .filter(organization__is_active=True)
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    for campaign_id in campaign_ids:
        try:
            done = campaign_budget_enforce(campaign=Campaign(pk=campaign_id), now=now)
        except Exception:
            logger.exception("checking the budget of campaign %s failed", campaign_id)
            continue
        if done:
            counts[done] += 1
    return counts


def _notify_budget_spent(campaign: Campaign, usage: BudgetUsage) -> None:
    from messaging.constants import NotificationEvent
    from messaging.services.notifications import members_with_roles, notify

    currency = campaign.organization.currency
    if usage.total_reached:
        title = f"{campaign.name} paused: its total budget is spent"
        body = (
            f"Recorded ad spend is {usage.spent_total} {currency} of a {usage.total_budget} {currency} budget. "
            "Raise the budget to sell its leads again."
        )
        dedupe_key = f"campaign-budget:{campaign.pk}:total:{usage.total_budget}"
    else:
        title = f"{campaign.name} paused for today: its daily budget is spent"
        body = (
            f"{usage.spent_today} {currency} of a {usage.daily_budget} {currency} daily budget spent on "
            f"{usage.day:%d %b %Y}. It resumes tomorrow, or now if you raise the budget."
        )
        dedupe_key = f"campaign-budget:{campaign.pk}:daily:{usage.day.isoformat()}:{usage.daily_budget}"
    notify(
        organization=campaign.organization,
        users=members_with_roles(campaign.organization_id, [Role.OWNER]),
        event=NotificationEvent.CAMPAIGN_BUDGET,
        title=title,
        body=body,
        url=reverse("campaigns:detail", args=[campaign.pk]),
        data={"campaign_id": campaign.pk},
        dedupe_key=dedupe_key,
    )
