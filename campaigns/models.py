"""Campaigns, buyers and the distribution engine's tables.

Money: every amount is a ``Decimal`` in the organization's currency (``Organization.currency``); an organization
sells in one currency, so no amount here carries its own.

How the engine's invariants are held (see ``campaigns.services.distribution``):

* caps and wallets: a distribution locks the buyers' ``Wallet`` rows (``SELECT … FOR UPDATE``, by buyer id) before
  it counts their sales or reads their balance, so two ingests never both see the last unit of a cap or of money;
* one outcome per lead and campaign: ``LeadDistribution`` is unique on (lead, campaign, round) and is looked for
  after the campaign's ``CampaignRoutingState`` row is locked;
* a buyer never gets the same lead twice: ``LeadSale`` is unique on (lead, buyer);
* a buyer never gets the same person twice in a campaign: every sale writes one ``BuyerContact`` row per
  normalized contact (``email:…``, ``phone:…``) under a unique (buyer, campaign, contact_key); the apply checks
  them under the buyer's lock, the constraint is the backstop.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.constants import TIMEZONE_CHOICES
from leadflow.tenancy.models import TenantModel

from .constants import (
    WEIGHT_MAX,
    WEIGHT_MIN,
    AdChannel,
    BuyerStatus,
    CampaignStatus,
    DistributionLogic,
    DistributionStatus,
    PauseReason,
    WalletEntryKind,
)
from .schema import validate_field_filters, validate_field_schema

ZERO = Decimal("0")


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=14, decimal_places=2, **kwargs)


# Rows that history hangs off (a category with campaigns, a campaign or buyer with sales or ledger entries) use
# RESTRICT: they cannot be deleted on their own, yet deleting the whole organization still cascades through them.


class Category(TenantModel):
    """A vertical (Medicare, solar, real estate …) and the custom fields its leads carry."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60)
    fields = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"name": "age", "label": "Age", "type": "number", "required": true, "choices": []}, …]',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="campaigns_category_slug_unique"),
            models.UniqueConstraint("organization", Lower("name"), name="campaigns_category_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validate_field_schema(self.fields)

    def save(self, *args, **kwargs):
        # A broken schema would break every ingest of the category's campaigns: refuse it on every path (API,
        # admin, shell), not only in forms.
        validate_field_schema(self.fields)
        super().save(*args, **kwargs)


class Campaign(TenantModel):
    category = models.ForeignKey(Category, on_delete=models.RESTRICT, related_name="campaigns")
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.ACTIVE)
    pause_reason = models.CharField(max_length=8, choices=PauseReason.choices, blank=True)
    price_per_lead = money_field(validators=[MinValueValidator(ZERO)])
    distribution_logic = models.CharField(
        max_length=12, choices=DistributionLogic.choices, default=DistributionLogic.ROUND_ROBIN
    )
    buyers_pick_states = models.BooleanField(
        default=False, help_text="Buyers' subscriptions may limit the states they buy; otherwise states are ignored"
    )
    ad_channel = models.CharField(max_length=12, choices=AdChannel.choices, default=AdChannel.OTHER)
    daily_budget = money_field(null=True, blank=True, validators=[MinValueValidator(ZERO)])
    total_budget = money_field(null=True, blank=True, validators=[MinValueValidator(ZERO)])
    ad_spend = money_field(default=ZERO, validators=[MinValueValidator(ZERO)], help_text="Recorded ad spend to date")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price_per_lead__gte=0), name="campaigns_campaign_price_gte_0"),
            models.CheckConstraint(condition=Q(ad_spend__gte=0), name="campaigns_campaign_ad_spend_gte_0"),
            # A paused campaign says why (billing resumes only what billing paused); an active one has no reason.
            models.CheckConstraint(
                condition=(
                    Q(status=CampaignStatus.ACTIVE, pause_reason="")
                    | (Q(status=CampaignStatus.PAUSED) & ~Q(pause_reason=""))
                ),
                name="campaigns_campaign_pause_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == CampaignStatus.ACTIVE


class CampaignRoutingState(TenantModel):
    """Where the campaign's rotation stands, in the database so it survives restarts and is shared by every worker.

    The row is also the campaign's distribution lock: ``lead_distribute`` holds it ``FOR UPDATE``.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="routing_state")
    # Round robin: the subscription served last; the next lead goes to the next subscription id after it.
    last_subscription_id = models.BigIntegerField(null=True, blank=True)
    # Smooth weighted round robin: each subscription's current weight, {"<subscription id>": int}.
    current_weights = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Routing of campaign {self.campaign_id}"


class Buyer(TenantModel):
    name = models.CharField(max_length=120)
    company = models.CharField(max_length=255, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=BuyerStatus.choices, default=BuyerStatus.ACTIVE)
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="Asia/Kolkata")
    credit_limit = money_field(
        default=ZERO, validators=[MinValueValidator(ZERO)], help_text="How far below zero the wallet may go"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.CheckConstraint(condition=Q(credit_limit__gte=0), name="campaigns_buyer_credit_gte_0")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == BuyerStatus.ACTIVE


class BuyerSubscription(TenantModel):
    """A buyer's standing order in a campaign: how many, which, when, and at what price."""

    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="subscriptions")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="subscriptions")
    is_active = models.BooleanField(default=True)
    # Caps count the buyer's sales in this campaign per calendar hour/day/week/month of the buyer's time zone.
    hourly_cap = models.PositiveIntegerField(null=True, blank=True, help_text="Empty means no cap")
    daily_cap = models.PositiveIntegerField(null=True, blank=True)
    weekly_cap = models.PositiveIntegerField(null=True, blank=True)
    monthly_cap = models.PositiveIntegerField(null=True, blank=True)
    states = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="State codes wanted (when the campaign lets buyers pick states); empty means all",
    )
    field_filters = models.JSONField(
        default=list, blank=True, help_text='[{"field": "custom.age", "operator": "gte", "value": "65"}, …]'
    )
    # Delivery schedule in the buyer's time zone: weekdays (0 = Monday; empty = every day) and hours. A window
    # whose end is before its start runs overnight (22:00 to 06:00).
    schedule_days = ArrayField(
        models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)]), default=list, blank=True
    )
    schedule_start = models.TimeField(null=True, blank=True)
    schedule_end = models.TimeField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Waterfall order: lower goes first")
    weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(WEIGHT_MIN), MaxValueValidator(WEIGHT_MAX)]
    )
    price_override = money_field(
        null=True, blank=True, validators=[MinValueValidator(ZERO)], help_text="Empty: the campaign's price"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["buyer", "campaign"], name="campaigns_subscription_unique"),
            models.CheckConstraint(
                condition=Q(weight__gte=WEIGHT_MIN, weight__lte=WEIGHT_MAX), name="campaigns_subscription_weight"
            ),
            models.CheckConstraint(
                condition=Q(price_override__isnull=True) | Q(price_override__gte=0),
                name="campaigns_subscription_price_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(schedule_start__isnull=True, schedule_end__isnull=True)
                | Q(schedule_start__isnull=False, schedule_end__isnull=False),
                name="campaigns_subscription_schedule_hours",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.buyer} in {self.campaign}"

    def clean(self) -> None:
        validate_field_filters(self.field_filters)
        if any(day > 6 for day in self.schedule_days or []):
            raise ValidationError({"schedule_days": ["Days are 0 (Monday) to 6 (Sunday)."]})
        if (self.schedule_start is None) != (self.schedule_end is None):
            raise ValidationError({"schedule_end": ["Give both the start and the end of the delivery hours."]})
        if self.buyer_id and self.campaign_id and self.buyer.organization_id != self.campaign.organization_id:
            raise ValidationError({"buyer": ["The buyer and the campaign belong to different organizations."]})

    def save(self, *args, **kwargs):
        validate_field_filters(self.field_filters)
        super().save(*args, **kwargs)

    @property
    def price(self) -> Decimal:
        return self.price_override if self.price_override is not None else self.campaign.price_per_lead


class Supplier(TenantModel):
    """A source of leads: paid per accepted lead, limited to its campaigns."""

    name = models.CharField(max_length=120)
    email = models.EmailField(blank=True)
    payout_per_lead = money_field(default=ZERO, validators=[MinValueValidator(ZERO)])
    campaigns = models.ManyToManyField(Campaign, blank=True, related_name="suppliers")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(payout_per_lead__gte=0), name="campaigns_supplier_payout_gte_0")
        ]

    def __str__(self) -> str:
        return self.name


class Wallet(TenantModel):
    """A buyer's current balance: always the sum of its ledger, changed only with the row locked."""

    buyer = models.OneToOneField(Buyer, on_delete=models.CASCADE, related_name="wallet")
    balance = money_field(default=ZERO)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Wallet of {self.buyer_id}: {self.balance}"


class ImmutableRow(models.Model):
    """Rows that record what happened: written once, never changed or deleted by the application."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValidationError(f"{type(self).__name__} rows are immutable; record a new entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(f"{type(self).__name__} rows are immutable.")


class WalletEntry(ImmutableRow, TenantModel):
    """The wallet's ledger. ``amount`` is signed (debits negative) so the balance is ``SUM(amount)``."""

    buyer = models.ForeignKey(Buyer, on_delete=models.RESTRICT, related_name="wallet_entries")
    kind = models.CharField(max_length=10, choices=WalletEntryKind.choices)
    amount = money_field()
    balance_after = money_field()
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=255, blank=True)
    # The payment behind a credit (a provider's payment or order id): the same payment never credits twice.
    external_reference = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "wallet entries"
        indexes = [models.Index(fields=["buyer", "-created_at"], name="campaigns_ledger_buyer_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_reference"],
                condition=~Q(external_reference=""),
                name="campaigns_ledger_reference_unique",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=[WalletEntryKind.CREDIT, WalletEntryKind.REFUND], amount__gt=0)
                    | Q(kind=WalletEntryKind.DEBIT, amount__lt=0)
                    | (Q(kind=WalletEntryKind.ADJUSTMENT) & ~Q(amount=0))
                ),
                name="campaigns_ledger_amount_sign",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} (balance {self.balance_after})"


class LeadDistribution(TenantModel):
    """The outcome of routing one lead in one campaign: sold (see its sales) or unsold, with each buyer's reason.

    ``round`` numbers redistributions of the same lead (unsold or returned leads offered again); the first
    routing is round 1.
    """

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="distributions")
    campaign = models.ForeignKey(Campaign, on_delete=models.RESTRICT, related_name="distributions")
    round = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=8, choices=DistributionStatus.choices)
    strategy = models.CharField(max_length=12, choices=DistributionLogic.choices)
    # {"<buyer id>": "capped" | "outside_schedule" | …}: why each subscribed buyer that got nothing got nothing.
    reasons = models.JSONField(default=dict, blank=True)
    revenue = money_field(default=ZERO)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="campaigns_distribution_idx")]
        constraints = [
            models.UniqueConstraint(fields=["lead", "campaign", "round"], name="campaigns_distribution_unique")
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} in campaign {self.campaign_id}: {self.status}"


class LeadSale(TenantModel):
    """One lead sold to one buyer. Caps are counted from these rows."""

    distribution = models.ForeignKey(LeadDistribution, on_delete=models.CASCADE, related_name="sales")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="sales")
    campaign = models.ForeignKey(Campaign, on_delete=models.RESTRICT, related_name="sales")
    buyer = models.ForeignKey(Buyer, on_delete=models.RESTRICT, related_name="sales")
    subscription = models.ForeignKey(
        BuyerSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="sales"
    )
    price = money_field()
    wallet_entry = models.OneToOneField(
        WalletEntry, null=True, blank=True, on_delete=models.RESTRICT, related_name="sale"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["buyer", "campaign", "created_at"], name="campaigns_sale_caps_idx")]
        constraints = [
            models.UniqueConstraint(fields=["lead", "buyer"], name="campaigns_sale_lead_buyer_unique"),
            models.CheckConstraint(condition=Q(price__gte=0), name="campaigns_sale_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} → buyer {self.buyer_id} at {self.price}"


class BuyerContact(TenantModel):
    """The people a buyer has bought in a campaign, by normalized email and phone: one person is sold once."""

    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    contact_key = models.CharField(max_length=280, help_text="email:<address> or phone:<E.164>")
    sale = models.ForeignKey(LeadSale, on_delete=models.CASCADE, related_name="contacts")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["buyer", "campaign", "contact_key"], name="campaigns_contact_unique")
        ]

    def __str__(self) -> str:
        return f"{self.contact_key} bought by {self.buyer_id}"
