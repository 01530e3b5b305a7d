"""Reading campaigns, buyers and outcomes. Always through the scoped managers: call them inside a scope."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, QuerySet, Sum

from .constants import DistributionStatus
from .models import ZERO, Buyer, Campaign, LeadDistribution, LeadSale, Wallet, WalletEntry

CENT = Decimal("0.01")


def campaign_cost_per_lead(campaign: Campaign) -> Decimal | None:
    """Recorded ad spend over the leads the campaign received (first routings only); ``None`` before any lead."""
    leads = LeadDistribution.objects.filter(campaign=campaign, round=1).count()
    if not leads:
        return None
    return (campaign.ad_spend / leads).quantize(CENT, rounding=ROUND_HALF_UP)


def campaign_figures(campaign: Campaign) -> dict:
    """Leads, sold, unsold, revenue and cost per lead, with the unsold leads' reasons counted per buyer reason."""
    distributions = LeadDistribution.objects.filter(campaign=campaign)
    totals = distributions.aggregate(
        leads=Count("id", filter=Q(round=1)),
        sold=Count("id", filter=Q(status=DistributionStatus.SOLD)),
        unsold=Count("id", filter=Q(status=DistributionStatus.UNSOLD)),
        revenue=Sum("revenue"),
    )
    reasons: dict[str, int] = {}
    for row in distributions.filter(status=DistributionStatus.UNSOLD).values_list("reasons", flat=True)[:5000]:
        for reason in row.values():
            reasons[reason] = reasons.get(reason, 0) + 1
    return {
        **totals,
        "revenue": totals["revenue"] or ZERO,
        "cost_per_lead": campaign_cost_per_lead(campaign),
        "unsold_reasons": dict(sorted(reasons.items(), key=lambda item: -item[1])),
    }


def buyer_balance(buyer: Buyer) -> Decimal:
    return Wallet.objects.filter(buyer=buyer).values_list("balance", flat=True).first() or ZERO


def buyer_ledger(buyer: Buyer) -> QuerySet[WalletEntry]:
    return WalletEntry.objects.filter(buyer=buyer).order_by("-created_at", "-id")


def ledger_sum(buyer: Buyer) -> Decimal:
    """What the balance must be: the sum of the ledger (the invariant the wallet services keep)."""
    return WalletEntry.objects.filter(buyer=buyer).aggregate(total=Sum("amount"))["total"] or ZERO


def lead_outcomes(lead) -> QuerySet[LeadDistribution]:
    return LeadDistribution.objects.filter(lead=lead).prefetch_related("sales").order_by("-created_at", "-id")


def buyer_sales(buyer: Buyer) -> QuerySet[LeadSale]:
    return LeadSale.objects.filter(buyer=buyer).select_related("lead", "campaign").order_by("-created_at", "-id")
