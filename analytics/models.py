"""Rollups: the figures of every report, summed per organization and day (and month), kept by a beat task.

Reports read these tables, never the million-row ones: a year of leads is a few thousand month rows. A day is a
calendar day of the organization's time zone; weeks and months are grouped from days. Dimensions that may be
empty (no campaign, no owner) are stored as 0 so every row has one natural key (PostgreSQL treats NULLs as
distinct in unique constraints) and ids are plain integers, not foreign keys: a rollup is derived data, rebuilt
from the source tables, and must not stop a campaign or a user from being deleted.

How they are kept current (``analytics.services``): every run recomputes each cube's *live window* (the last few
days, where nearly every change happens: new leads, first contacts, assignments, sales, delivery receipts) at no
cost to the code that writes those rows, plus the days queued in ``RollupStaleDay`` by changes to older rows.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from leadflow.tenancy.models import TenantModel

ZERO = Decimal("0")


def money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=16, decimal_places=2, default=ZERO, **kwargs)


class LeadRollupBase(TenantModel):
    """Leads received on ``day`` (or in the month starting on ``day``) per source, campaign, current stage, owner."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    # Which dimensions the row keeps (``analytics.cubes.LEAD_GRAINS``); the others hold "*" or -1 (all of them).
    grain = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=16)
    campaign_id = models.BigIntegerField(help_text="The campaign of the lead's first routing; 0: none, -1: all")
    stage_id = models.BigIntegerField(help_text="-1: all")
    owner_id = models.BigIntegerField(help_text="0: unassigned, -1: all")
    # Originals only (duplicates are counted apart): every figure below is of originals.
    leads = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    won = models.PositiveIntegerField(default=0)
    won_revenue = money()
    lost = models.PositiveIntegerField(default=0)
    # Speed to lead: first contact after receipt, in exclusive bins (up to 1 min, 1 to 5, 5 to 15 min, …, over 24 h).
    contacted = models.PositiveIntegerField(default=0)
    speed_seconds = models.BigIntegerField(default=0, help_text="Sum over the contacted leads")
    speed_1m = models.PositiveIntegerField(default=0)
    speed_5m = models.PositiveIntegerField(default=0)
    speed_15m = models.PositiveIntegerField(default=0)
    speed_1h = models.PositiveIntegerField(default=0)
    speed_4h = models.PositiveIntegerField(default=0)
    speed_24h = models.PositiveIntegerField(default=0)
    speed_later = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class LeadDayRollup(LeadRollupBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "grain", "day", "source", "campaign_id", "stage_id", "owner_id"],
                name="analytics_lead_day_unique",
            )
        ]


class LeadMonthRollup(LeadRollupBase):
    """``day`` is the first of the month."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "grain", "day", "source", "campaign_id", "stage_id", "owner_id"],
                name="analytics_lead_month_unique",
            )
        ]


class SaleRollupBase(TenantModel):
    """Leads sold on ``day`` per campaign, buyer and the supplier who posted the lead (0: none), and what came back."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    grain = models.PositiveSmallIntegerField(help_text="analytics.cubes.SALE_GRAINS")
    campaign_id = models.BigIntegerField(help_text="-1: all")
    buyer_id = models.BigIntegerField(help_text="-1: all")
    supplier_id = models.BigIntegerField(help_text="0: none, -1: all")
    sold = models.PositiveIntegerField(default=0)
    revenue = money()
    # Returns approved (refunded) of the sales of that day, whenever they were decided.
    returned = models.PositiveIntegerField(default=0)
    refunded = money()

    class Meta:
        abstract = True


class SaleDayRollup(SaleRollupBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "grain", "day", "campaign_id", "buyer_id", "supplier_id"],
                name="analytics_sale_day_unique",
            )
        ]


class SaleMonthRollup(SaleRollupBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "grain", "day", "campaign_id", "buyer_id", "supplier_id"],
                name="analytics_sale_month_unique",
            )
        ]


class SubmissionDayRollup(TenantModel):
    """Leads suppliers posted to campaigns on ``day`` and the payout they earned."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    supplier_id = models.BigIntegerField(default=0)
    campaign_id = models.BigIntegerField()
    submitted = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    payout = money()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "supplier_id", "campaign_id"], name="analytics_submission_day_unique"
            )
        ]


class MessageDayRollup(TenantModel):
    """Messages created on ``day`` per channel and direction, with how far the outbound ones got."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    channel = models.CharField(max_length=10)
    direction = models.CharField(max_length=3)
    messages = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0, help_text="Taken by the provider (sent, delivered or read)")
    delivered = models.PositiveIntegerField(default=0, help_text="Delivered or read")
    read = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    replied = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "channel", "direction"], name="analytics_message_day_unique"
            )
        ]


class CampaignSpendDay(TenantModel):
    """Ad spend booked to a day. Campaigns record spend to date (``Campaign.ad_spend``); each refresh books the
    change since the last one to that day, so cost per lead can be read for any period. Spend a campaign had when
    it was first seen is spread evenly over the days since its creation (nothing says when it was spent)."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign_id = models.BigIntegerField()
    day = models.DateField()
    amount = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "campaign_id", "day"], name="analytics_spend_day_unique")
        ]
        indexes = [models.Index(fields=["organization", "day"], name="analytics_spend_org_day_idx")]


class RollupStaleDay(TenantModel):
    """A day of a cube to recompute at the next refresh: an older row changed (a stage, an owner, a return …)."""

    cube = models.CharField(max_length=12)
    day = models.DateField()
    marked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "cube", "day"], name="analytics_stale_day_unique")
        ]


class RollupState(TenantModel):
    """Per organization: which time zone the rollups were built in and when they were last refreshed."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    timezone = models.CharField(max_length=64, blank=True)
    rebuild_requested = models.BooleanField(default=False, help_text="Rebuild every day at the next refresh")
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    last_refresh_ms = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Rollups of {self.organization_id}"
