from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone

from accounts.constants import Currency
from leadflow.tenancy.models import TenantModel


class BillingInterval(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    YEARLY = "yearly", "Yearly"


class Plan(models.Model):
    """A subscription plan; the catalogue is kept by `manage.py seed_plans`."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=255, blank=True)
    monthly_lead_quota = models.PositiveIntegerField(help_text="Leads per month; 0 means unlimited")
    seats = models.PositiveIntegerField(help_text="Team members; 0 means unlimited")
    features = models.JSONField(default=list, blank=True)
    is_public = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        return self.name

    def price_for(self, currency: str, interval: str = BillingInterval.MONTHLY) -> PlanPrice | None:
        return next((p for p in self.prices.all() if p.currency == currency and p.interval == interval), None)


class PlanPrice(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(max_length=3, choices=Currency.choices)
    interval = models.CharField(max_length=8, choices=BillingInterval.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "currency", "interval"], name="billing_planprice_unique"),
            models.CheckConstraint(condition=models.Q(amount__gte=Decimal("0")), name="billing_planprice_amount_gte_0"),
        ]
        ordering = ["plan", "currency", "interval"]

    def __str__(self) -> str:
        return f"{self.plan} {self.amount} {self.currency}/{self.interval}"


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    SUSPENDED = "suspended", "Suspended"
    CANCELLED = "cancelled", "Cancelled"


class Subscription(TenantModel):
    """An organization's plan and where it stands. Payment providers arrive with the billing issue."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.TRIALING)
    interval = models.CharField(max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTHLY)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    provider = models.CharField(max_length=16, default="offline")
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="billing_subscription_one_per_org")]

    def __str__(self) -> str:
        return f"{self.plan} ({self.status})"

    @property
    def trial_days_left(self) -> int | None:
        if self.status != SubscriptionStatus.TRIALING or not self.trial_ends_at:
            return None
        remaining = self.trial_ends_at - timezone.now()
        return max(0, remaining.days + (1 if remaining.seconds else 0))
