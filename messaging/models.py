"""Usage metering: every message and webhook LeadFlow sends on an organization's behalf, with what it cost us and
what the organization is billed for it (its markup on top), so billing can rebill it later.

Amounts are ``Decimal`` with four places (an SMS costs fractions of a cent) and carry their currency: providers
price in their own (Twilio in USD), which need not be the organization's.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadflow.tenancy.models import TenantModel

from .constants import Channel


def usage_amount_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=14, decimal_places=4, **kwargs)


class UsagePricing(TenantModel):
    """The organization's markup on provider costs (one row per organization; none means the default)."""

    markup_percent = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1000"))],
        help_text="Added on top of what providers charge, e.g. 20 bills a 0.0079 SMS at 0.0095",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="messaging_pricing_one_per_org"),
            models.CheckConstraint(condition=Q(markup_percent__gte=0), name="messaging_pricing_markup_gte_0"),
        ]

    def __str__(self) -> str:
        return f"Markup {self.markup_percent}% for {self.organization_id}"


class UsageRecord(TenantModel):
    """One metered send. ``source_key`` names what was sent (``sale-delivery:12``, ``webhook-delivery:7``): the same
    send is never metered twice."""

    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider = models.CharField(max_length=40)
    provider_message_id = models.CharField(max_length=120, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    provider_cost = usage_amount_field(validators=[MinValueValidator(Decimal("0"))])
    # Whether the provider reported the cost, or it is the configured estimate (Twilio prices a message later).
    cost_is_estimate = models.BooleanField(default=False)
    currency = models.CharField(max_length=3)
    markup_percent = models.DecimalField(max_digits=6, decimal_places=2)
    billable_amount = usage_amount_field(validators=[MinValueValidator(Decimal("0"))])
    source_key = models.CharField(max_length=120)
    description = models.CharField(max_length=255, blank=True)
    # What the send was about, for rebilling per buyer or per lead: {"buyer_id", "sale_id", "lead_id", …}.
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="messaging_usage_org_idx")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "source_key"], name="messaging_usage_source_unique"),
            models.CheckConstraint(condition=Q(provider_cost__gte=0), name="messaging_usage_cost_gte_0"),
            models.CheckConstraint(condition=Q(billable_amount__gte=0), name="messaging_usage_billable_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} via {self.provider}: {self.billable_amount} {self.currency}"
