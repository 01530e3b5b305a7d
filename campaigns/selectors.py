"""Reading campaigns, buyers and outcomes. Always through the scoped managers: call them inside a scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from .constants import DistributionStatus, ReturnStatus, SubmissionOutcome
from .models import (
    ZERO,
    Buyer,
    BuyerSubscription,
    Campaign,
    CampaignSpend,
    CampaignSubmission,
    LeadDistribution,
    LeadReturn,
    LeadSale,
    Supplier,
    Wallet,
    WalletEntry,
)

CENT = Decimal("0.01")


def campaign_cost_per_lead(campaign: Campaign) -> Decimal | None:
    """Recorded ad spend over the leads the campaign received (first routings only); ``None`` before any lead."""
    leads = LeadDistribution.objects.filter(campaign=campaign, round=1).count()
    if not leads:
        return None
    return (campaign.ad_spend / leads).quantize(CENT, rounding=ROUND_HALF_UP)


# Budgets -------------------------------------------------------------------------------------------------------------


def organization_today(organization, *, now: datetime | None = None) -> date:
    """The calendar day it is in the organization's time zone: the day a daily budget counts."""
    return timezone.localtime(now or timezone.now(), ZoneInfo(organization.timezone)).date()


def _percent(spent: Decimal, budget: Decimal | None) -> int | None:
    if budget is None:
        return None
    if budget <= 0:
        return 100
    return min(100, int((100 * spent / budget).to_integral_value(rounding=ROUND_HALF_UP)))


@dataclass(frozen=True)
class BudgetUsage:
    """A campaign's recorded spend against its budgets (``None`` budgets are unlimited)."""

    day: date
    spent_today: Decimal
    spent_total: Decimal
    daily_budget: Decimal | None
    total_budget: Decimal | None

    @property
    def daily_reached(self) -> bool:
        return self.daily_budget is not None and self.spent_today >= self.daily_budget

    @property
    def total_reached(self) -> bool:
        return self.total_budget is not None and self.spent_total >= self.total_budget

    @property
    def reached(self) -> bool:
        return self.daily_reached or self.total_reached

    @property
    def daily_percent(self) -> int | None:
        return _percent(self.spent_today, self.daily_budget)

    @property
    def total_percent(self) -> int | None:
        return _percent(self.spent_total, self.total_budget)


def campaign_spend_on(campaign: Campaign, day: date) -> Decimal:
    return CampaignSpend.objects.filter(campaign=campaign, spent_on=day).aggregate(total=Sum("amount"))["total"] or ZERO


def campaign_budget_usage(campaign: Campaign, *, now: datetime | None = None) -> BudgetUsage:
    """Today's spend (the organization's day) and the total, against the daily and total budgets."""
    day = organization_today(campaign.organization, now=now)
    return BudgetUsage(
        day=day,
        spent_today=campaign_spend_on(campaign, day),
        spent_total=campaign.ad_spend,
        daily_budget=campaign.daily_budget,
        total_budget=campaign.total_budget,
    )


def campaign_spend_entries(campaign: Campaign, limit: int = 10) -> QuerySet[CampaignSpend]:
    return CampaignSpend.objects.filter(campaign=campaign).select_related("actor").order_by("-spent_on", "-id")[:limit]


def _unsold_reason_counts(campaign: Campaign, since: datetime | None) -> list[tuple[int, str, int]]:
    """(buyer id, reason, how many leads) over the campaign's distributions, counted in the database."""
    sql = (
        "SELECT r.key::bigint, r.value, count(*) FROM campaigns_leaddistribution d, jsonb_each_text(d.reasons) r "
        "WHERE d.campaign_id = %s AND d.organization_id = %s"
    )
    params: list = [campaign.pk, campaign.organization_id]
    if since is not None:
        sql += " AND d.created_at >= %s"
        params.append(since)
    sql += " AND d.status = %s GROUP BY 1, 2"
    params.append(DistributionStatus.UNSOLD)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(buyer_id), reason, count) for buyer_id, reason, count in cursor.fetchall()]


def campaign_figures(campaign: Campaign, *, since: datetime | None = None) -> dict:
    """Leads, sold, unsold, revenue and cost per lead, with the unsold leads' reasons counted per buyer reason."""
    distributions = LeadDistribution.objects.filter(campaign=campaign)
    if since is not None:
        distributions = distributions.filter(created_at__gte=since)
    totals = distributions.aggregate(
        leads=Count("id", filter=Q(round=1)),
        sold=Count("id", filter=Q(status=DistributionStatus.SOLD)),
        unsold=Count("id", filter=Q(status=DistributionStatus.UNSOLD)),
        revenue=Sum("revenue"),
    )
    reasons: dict[str, int] = {}
    for _buyer_id, reason, count in _unsold_reason_counts(campaign, since):
        reasons[reason] = reasons.get(reason, 0) + count
    return {
        **totals,
        "revenue": totals["revenue"] or ZERO,
        "cost_per_lead": campaign_cost_per_lead(campaign),
        "unsold_reasons": dict(sorted(reasons.items(), key=lambda item: -item[1])),
    }


def campaign_buyer_figures(campaign: Campaign, *, since: datetime | None = None) -> list[dict]:
    """Per subscribed buyer: leads bought, revenue, returns, and why it missed unsold leads."""
    sales = LeadSale.objects.filter(campaign=campaign)
    returns = LeadReturn.objects.filter(campaign=campaign)
    if since is not None:
        sales, returns = sales.filter(created_at__gte=since), returns.filter(requested_at__gte=since)
    bought = {row["buyer_id"]: row for row in sales.values("buyer_id").annotate(sold=Count("id"), revenue=Sum("price"))}
    returned = dict(
        returns.filter(status=ReturnStatus.APPROVED)
        .values("buyer_id")
        .annotate(n=Count("id"))
        .values_list("buyer_id", "n")
    )
    missed: dict[int, dict[str, int]] = {}
    for buyer_id, reason, count in _unsold_reason_counts(campaign, since):
        missed.setdefault(buyer_id, {})[reason] = count
    rows = []
    subscriptions = BuyerSubscription.objects.filter(campaign=campaign).select_related("buyer__wallet")
    for sub in subscriptions.order_by("priority", "id"):
        figures = bought.get(sub.buyer_id, {})
        rows.append(
            {
                "subscription": sub,
                "buyer": sub.buyer,
                "sold": figures.get("sold", 0),
                "revenue": figures.get("revenue") or ZERO,
                "returned": returned.get(sub.buyer_id, 0),
                "missed": dict(sorted(missed.get(sub.buyer_id, {}).items(), key=lambda item: -item[1])),
                "balance": getattr(getattr(sub.buyer, "wallet", None), "balance", ZERO),
            }
        )
    return rows


def campaign_recent_distributions(campaign: Campaign, limit: int = 25) -> QuerySet[LeadDistribution]:
    return (
        LeadDistribution.objects.filter(campaign=campaign)
        .select_related("lead")
        .prefetch_related("sales__buyer")
        .order_by("-created_at", "-id")[:limit]
    )


def buyer_balance(buyer: Buyer) -> Decimal:
    return Wallet.objects.filter(buyer=buyer).values_list("balance", flat=True).first() or ZERO


def buyer_ledger(buyer: Buyer) -> QuerySet[WalletEntry]:
    # Ledger order is id order: entries are written under the wallet's lock, so ids follow the balance. A sale's
    # debit carries the distribution's clock, which may be a moment before an entry written just ahead of it.
    return WalletEntry.objects.filter(buyer=buyer).order_by("-id")


def ledger_sum(buyer: Buyer) -> Decimal:
    """What the balance must be: the sum of the ledger (the invariant the wallet services keep)."""
    return WalletEntry.objects.filter(buyer=buyer).aggregate(total=Sum("amount"))["total"] or ZERO


def lead_outcomes(lead) -> QuerySet[LeadDistribution]:
    return LeadDistribution.objects.filter(lead=lead).prefetch_related("sales").order_by("-created_at", "-id")


def buyer_sales(buyer: Buyer) -> QuerySet[LeadSale]:
    return LeadSale.objects.filter(buyer=buyer).select_related("lead", "campaign").order_by("-created_at", "-id")


# Suppliers -----------------------------------------------------------------------------------------------------------

EMPTY_SUPPLIER_STATS = {
    "submitted": 0,
    "accepted": 0,
    "duplicates": 0,
    "rejected": 0,
    "failed": 0,
    "tests": 0,
    "sold": 0,
    "payout": ZERO,
}


def supplier_statistics(
    supplier_ids: list[int], *, since: datetime | None = None, until: datetime | None = None, by_campaign=False
) -> dict:
    """Supplier id (or (supplier id, campaign id) with ``by_campaign``) → what it posted and what became of it:
    submitted, accepted (test leads apart), duplicates, rejected, failed, tests, sold (accepted leads sold in that
    campaign, any round) and the payout owed. Two queries whatever the number of suppliers."""
    rows = CampaignSubmission.objects.filter(supplier_id__in=supplier_ids)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    keys = ["supplier_id", "campaign_id"] if by_campaign else ["supplier_id"]
    accepted = Q(outcome=SubmissionOutcome.ACCEPTED, is_test=False)
    counted = rows.values(*keys).annotate(
        submitted=Count("id"),
        accepted=Count("id", filter=accepted),
        duplicates=Count("id", filter=Q(outcome=SubmissionOutcome.DUPLICATE)),
        rejected=Count("id", filter=Q(outcome=SubmissionOutcome.REJECTED)),
        failed=Count("id", filter=Q(outcome=SubmissionOutcome.FAILED)),
        tests=Count("id", filter=Q(is_test=True)),
        payout=Sum("payout"),
    )
    sold_sale = LeadSale.objects.filter(lead_id=OuterRef("lead_id"), campaign_id=OuterRef("campaign_id"))
    sold = rows.filter(accepted).filter(Exists(sold_sale)).values(*keys).annotate(sold=Count("id"))
    stats = {}
    for row in counted:
        key = tuple(row[k] for k in keys) if by_campaign else row["supplier_id"]
        stats[key] = {**EMPTY_SUPPLIER_STATS, **{k: v for k, v in row.items() if k not in keys}}
        stats[key]["payout"] = row["payout"] or ZERO
    for row in sold:
        key = tuple(row[k] for k in keys) if by_campaign else row["supplier_id"]
        stats[key]["sold"] = row["sold"]
    return stats


def suppliers_with_keys() -> QuerySet[Supplier]:
    return Supplier.objects.prefetch_related("campaigns", "api_keys__api_key").order_by("name", "id")


# Returns ---------------------------------------------------------------------------------------------------------------


def returns_queue(*, status: str | None = ReturnStatus.REQUESTED) -> QuerySet[LeadReturn]:
    queryset = LeadReturn.objects.select_related("buyer", "campaign", "lead", "sale", "requested_by", "decided_by")
    if status:
        queryset = queryset.filter(status=status)
    return (
        queryset.order_by("requested_at", "id")
        if status == ReturnStatus.REQUESTED
        else queryset.order_by("-requested_at", "-id")
    )
