"""Reads of the messaging app, through the scoped managers."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, QuerySet, Sum

from .models import UsagePricing, UsageRecord


def usage_records(*, since: datetime | None = None, until: datetime | None = None) -> QuerySet[UsageRecord]:
    queryset = UsageRecord.objects.order_by("-created_at", "-id")
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset


USAGE_TOTALS = {
    "count": Count("id"),
    "quantity": Sum("quantity"),
    "cost": Sum("provider_cost"),
    "billable": Sum("billable_amount"),
}


def usage_summary(*, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Per channel and currency: how many sends, what they cost us and what is billable."""
    rows = (
        usage_records(since=since, until=until)
        .order_by()
        .values("channel", "currency")
        .annotate(**USAGE_TOTALS)
        .order_by("channel", "currency")
    )
    return list(rows)


def usage_pricing(organization) -> UsagePricing | None:
    return UsagePricing.objects.filter(organization=organization).first()
