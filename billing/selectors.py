"""Reads for billing pages, the API and the operators' revenue view."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from .models import (
    BillingInterval,
    Invoice,
    InvoiceStatus,
    PlanPrice,
    Refund,
    Subscription,
    SubscriptionStatus,
)


def lead_usage_this_month(*, organization) -> tuple[int, int]:
    """(leads counted this month, the plan's monthly quota; 0 = unlimited)."""
    from leads.models import MonthlyLeadUsage
    from leads.services.quota import month_start, monthly_quota

    usage = (
        MonthlyLeadUsage.objects.unscoped().filter(organization=organization, month=month_start(organization)).first()
    )
    return (usage.lead_count if usage else 0), monthly_quota(organization)


def metered_usage_this_month(*, organization, now=None) -> dict:
    """What the registered usage sources report since the start of this (UTC) month: the lines the invoice on the
    1st will carry so far, and their total before tax, in the organization's currency."""
    from .metering import previous_month, usage_lines
    from .money import ZERO, quantize

    now = now or timezone.now()
    _, start = previous_month(now)  # the end of last month is where this month's invoice begins
    lines = usage_lines(organization=organization, period_start=start, period_end=now)
    rows = [
        {"line": line, "amount": quantize(line.quantity * line.unit_amount, organization.currency)} for line in lines
    ]
    total = sum((row["amount"] for row in rows), ZERO)
    return {"since": start, "lines": rows, "total": total, "currency": organization.currency}


def organization_invoices(*, organization):
    return Invoice.objects.unscoped().filter(organization=organization).prefetch_related("lines")


def _monthly_amount(price: PlanPrice | None) -> Decimal:
    if price is None:
        return Decimal("0")
    if price.interval == BillingInterval.YEARLY:
        return (price.amount / 12).quantize(Decimal("0.01"))
    return price.amount


def revenue_summary(*, now=None, days: int = 30) -> dict:
    """What operators watch: MRR per currency (active subscriptions, yearly as a twelfth, before tax), counts by
    status, churn over ``days`` (cancelled in the window ÷ active or cancelled-in-window), paid invoices and
    refunds in the window per currency."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    prices = {(p.plan_id, p.currency, p.interval): p for p in PlanPrice.objects.all()}
    mrr: dict[str, Decimal] = {}
    active = Subscription.objects.unscoped().filter(status=SubscriptionStatus.ACTIVE)
    for plan_id, currency, interval in active.values_list("plan_id", "currency", "interval"):
        mrr[currency] = mrr.get(currency, Decimal("0")) + _monthly_amount(prices.get((plan_id, currency, interval)))
    counts = dict(
        Subscription.objects.unscoped().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    churned = (
        Subscription.objects.unscoped().filter(status=SubscriptionStatus.CANCELLED, cancelled_at__gte=since).count()
    )
    base = counts.get(SubscriptionStatus.ACTIVE, 0) + churned
    paid = (
        Invoice.objects.unscoped()
        .filter(status=InvoiceStatus.PAID, paid_at__gte=since)
        .values("currency")
        .annotate(total=Sum("total"), count=Count("id"))
        .order_by("currency")
    )
    refunds = (
        Refund.objects.unscoped()
        .filter(refunded_at__gte=since)
        .values("currency")
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by("currency")
    )
    return {
        "days": days,
        "mrr": dict(sorted(mrr.items())),
        "counts": [(label, counts.get(value, 0)) for value, label in SubscriptionStatus.choices],
        "churned": churned,
        "churn_rate": (Decimal(churned) * 100 / base).quantize(Decimal("0.1")) if base else Decimal("0"),
        "paid": list(paid),
        "refunds": list(refunds),
    }
