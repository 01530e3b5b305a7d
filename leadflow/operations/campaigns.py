"""Campaign monitoring for operators: every organization's campaigns with today's leads, sales and revenue."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.constants import CampaignStatus, DistributionStatus
from campaigns.models import Campaign
from leadflow.db_router import reading_from_replica


def day_start(day: datetime | None = None) -> datetime:
    """Midnight UTC of ``day`` (today by default): the console's day, the same for every organization."""
    day = timezone.now() if day is None else day
    return datetime.combine(day.astimezone(UTC).date(), time.min, tzinfo=UTC)


@reading_from_replica()
def campaigns_activity(*, since: datetime, until: datetime | None = None, status: str | None = None) -> list[dict]:
    """One row per campaign: leads routed (first routings), sold, unsold and revenue in [since, until), busiest
    first; campaigns with no activity are listed too (an active campaign that receives nothing is news)."""
    until = until or since + timedelta(days=1)
    window = Q(distributions__created_at__gte=since, distributions__created_at__lt=until)
    campaigns = Campaign.objects.unscoped().select_related("organization", "category")
    if status:
        campaigns = campaigns.filter(status=status)
    campaigns = campaigns.annotate(
        leads=Count("distributions", filter=window & Q(distributions__round=1)),
        sold=Count("distributions", filter=window & Q(distributions__status=DistributionStatus.SOLD)),
        unsold=Count("distributions", filter=window & Q(distributions__status=DistributionStatus.UNSOLD)),
        revenue=Coalesce(
            Sum("distributions__revenue", filter=window),
            Value(Decimal("0")),
            output_field=DecimalField(max_digits=14, decimal_places=2),
        ),
    ).order_by("-revenue", "-leads", "organization__name", "name")
    return [
        {
            "campaign": campaign,
            "organization": campaign.organization,
            "leads": campaign.leads,
            "sold": campaign.sold,
            "unsold": campaign.unsold,
            "sell_through": f"{campaign.sold * 100 / (campaign.sold + campaign.unsold):.0f} %"
            if campaign.sold + campaign.unsold
            else "–",
            "revenue": campaign.revenue,
            "currency": campaign.organization.currency,
            "paused": campaign.status == CampaignStatus.PAUSED,
        }
        for campaign in campaigns
    ]


def campaigns_totals(rows: list[dict]) -> dict:
    """Totals per currency (organizations sell in their own currency, so revenue is never added across them)."""
    totals: dict[str, dict] = {}
    for row in rows:
        total = totals.setdefault(row["currency"], {"leads": 0, "sold": 0, "unsold": 0, "revenue": Decimal("0")})
        for name in ("leads", "sold", "unsold", "revenue"):
            total[name] += row[name]
    return dict(sorted(totals.items()))
