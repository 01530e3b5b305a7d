"""Campaigns, buyers and the distribution engine's tables.

Money: every amount is a ``Decimal`` in the organization's currency (``Organization.currency``); an organization
sells in one currency, so no amount here carries its own.

How the engine's invariants are held (see ``campaigns.services.distribution``):

* caps: a buyer's sales in a campaign are only made under that campaign's ``CampaignRoutingState`` lock, so they are
  counted once it is held; money: a distribution locks a buyer's ``Wallet`` row (``SELECT … FOR UPDATE``) before it
  reads its balance or its spending, so two ingests never both see the last unit of a cap or of money;
* one outcome per lead and campaign: ``LeadDistribution`` is unique on (lead, campaign, round) and is looked for
  after the campaign's ``CampaignRoutingState`` row is locked;
* a buyer never gets the same lead twice: ``LeadSale`` is unique on (lead, buyer);
* a buyer never gets the same person twice in a campaign: every sale writes one ``BuyerContact`` row per
  normalized contact (``email:…``, ``phone:…``) under a unique (buyer, campaign, contact_key); the apply checks
  them under the campaign's lock, the constraint is the backstop.
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
    DeliveryKind,
    DistributionLogic,
    DistributionStatus,
    PauseReason,
    RechargeStatus,
    ReturnReason,
    ReturnStatus,
    SaleDeliveryStatus,
    SubmissionOutcome,
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
    return_window_hours = models.PositiveIntegerField(
        default=72, help_text="How long after a sale the buyer may return the lead; 0 means no returns"
    )
    auto_redistribute = models.BooleanField(
        default=False, help_text="Offer unsold leads again on a schedule (every 15 minutes, up to the rounds below)"
    )
    redistribute_max_rounds = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(20)], help_text="Routings of a lead at most"
    )
    # Set by the database (migration 0004's triggers, from a sequence) whenever a subscription of the campaign, or a
    # setting of one of its buyers that distribution reads, changes — however it changed (a form, the admin,
    # ``update()``, SQL). Each process keeps the campaign's subscriptions in memory and reloads them when the figure it
    # reads under the campaign's lock differs. Saving a stale ``Campaign`` instance cannot lower it (a trigger too).
    subscriptions_version = models.BigIntegerField(default=0, editable=False)
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
    # Spending limits per calendar week (Monday) and month of the buyer's time zone, net of refunded returns.
    weekly_spend_limit = money_field(null=True, blank=True, validators=[MinValueValidator(ZERO)])
    monthly_spend_limit = money_field(null=True, blank=True, validators=[MinValueValidator(ZERO)])
    low_balance_threshold = money_field(
        null=True, blank=True, help_text="Email the buyer and your admins when the balance falls below this"
    )
    auto_recharge_enabled = models.BooleanField(default=False)
    auto_recharge_threshold = money_field(
        null=True, blank=True, help_text="Charge the buyer's saved payment method when the balance falls below this"
    )
    auto_recharge_amount = money_field(null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))])
    auto_recharge_failures = models.PositiveSmallIntegerField(default=0, help_text="Failed recharges in a row")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="campaigns_buyer_credit_gte_0"),
            models.CheckConstraint(
                condition=Q(auto_recharge_enabled=False)
                | Q(auto_recharge_threshold__isnull=False, auto_recharge_amount__gt=0),
                name="campaigns_buyer_auto_recharge_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == BuyerStatus.ACTIVE

    def clean(self) -> None:
        if self.auto_recharge_enabled and (self.auto_recharge_threshold is None or not self.auto_recharge_amount):
            raise ValidationError(
                {"auto_recharge_amount": ["Auto-recharge needs both a threshold and an amount to charge."]}
            )


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
    # Set when the balance fell below the buyer's low-balance threshold (the alert went out); cleared when it is back
    # above, so each crossing alerts once.
    low_balance_alerted = models.BooleanField(default=False)
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

    # Looked up through ``campaigns_ledger_buyer_idx`` (buyer, newest first), which leads with it.
    buyer = models.ForeignKey(Buyer, on_delete=models.RESTRICT, related_name="wallet_entries", db_index=False)
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


class CampaignSpend(ImmutableRow, TenantModel):
    """Ad spend recorded for a campaign, by the day (in the organization's time zone) it was spent.

    ``Campaign.ad_spend`` is the running total, changed in the same transaction as each row with the campaign
    locked; the rows say how much of it fell on each day, which the daily budget is measured against. An amount is
    signed: a correction of what was recorded before is a negative row.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="spend_entries")
    spent_on = models.DateField(help_text="The day the money was spent, in the organization's time zone")
    amount = money_field()
    total_after = money_field()
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-spent_on", "-id"]
        indexes = [models.Index(fields=["campaign", "spent_on"], name="campaigns_spend_day_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="campaigns_spend_amount_not_0"),
            models.CheckConstraint(condition=Q(total_after__gte=0), name="campaigns_spend_total_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.spent_on} for campaign {self.campaign_id}"


class LeadDistribution(TenantModel):
    """The outcome of routing one lead in one campaign: sold (see its sales) or unsold, with each buyer's reason.

    ``round`` numbers redistributions of the same lead (unsold or returned leads offered again); the first
    routing is round 1.
    """

    # Each looked up through a composite index that leads with it (``campaigns_distribution_unique``,
    # ``campaigns_distribution_idx``): an index of its own would only cost every sale one more write.
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="distributions", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.RESTRICT, related_name="distributions", db_index=False)
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

    # Indexed with the time instead (``campaigns_sale_org_created_idx``): analytics reads an organization's sales
    # by day, and the composite index serves every lookup by organization alone as well.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    distribution = models.ForeignKey(LeadDistribution, on_delete=models.CASCADE, related_name="sales")
    # Lead and buyer: looked up through the composite indexes that lead with them (``campaigns_sale_lead_buyer_unique``,
    # ``campaigns_sale_caps_idx``).
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="sales", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.RESTRICT, related_name="sales")
    buyer = models.ForeignKey(Buyer, on_delete=models.RESTRICT, related_name="sales", db_index=False)
    subscription = models.ForeignKey(
        BuyerSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="sales"
    )
    price = money_field()
    wallet_entry = models.OneToOneField(
        WalletEntry, null=True, blank=True, on_delete=models.RESTRICT, related_name="sale"
    )
    # When the sale's deliveries (one per delivery method of the buyer) were created; a sweep plans the ones a lost
    # task left unplanned.
    deliveries_planned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["buyer", "campaign", "created_at"], name="campaigns_sale_caps_idx"),
            models.Index(
                fields=["created_at"], name="campaigns_sale_unplanned_idx", condition=Q(deliveries_planned_at=None)
            ),
            models.Index(fields=["organization", "created_at"], name="campaigns_sale_org_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["lead", "buyer"], name="campaigns_sale_lead_buyer_unique"),
            models.CheckConstraint(condition=Q(price__gte=0), name="campaigns_sale_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} → buyer {self.buyer_id} at {self.price}"


class BuyerContact(TenantModel):
    """The people a buyer has bought in a campaign, by normalized email and phone: one person is sold once."""

    # Looked up through ``campaigns_contact_unique`` (buyer, …) and ``campaigns_contact_person_idx`` (campaign, …).
    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_key = models.CharField(max_length=280, help_text="email:<address> or phone:<E.164>")
    sale = models.ForeignKey(LeadSale, on_delete=models.CASCADE, related_name="contacts")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["buyer", "campaign", "contact_key"], name="campaigns_contact_unique")
        ]
        # "Has anyone in this campaign bought this person?", asked by every distribution.
        indexes = [models.Index(fields=["campaign", "contact_key"], name="campaigns_contact_person_idx")]

    def __str__(self) -> str:
        return f"{self.contact_key} bought by {self.buyer_id}"


# Suppliers' keys and what they posted ---------------------------------------------------------------------------------


class SupplierApiKey(TenantModel):
    """An organization API key that belongs to a supplier: it ingests into that supplier's campaigns only.

    A link row rather than a column on ``accounts.ApiKey``, so accounts knows nothing about campaigns; the key
    itself (hash, scopes, expiry, revocation) is an ordinary ``ApiKey``.
    """

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="api_keys")
    api_key = models.OneToOneField("accounts.ApiKey", on_delete=models.CASCADE, related_name="supplier_link")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "supplier API key"

    def __str__(self) -> str:
        return f"{self.api_key} of {self.supplier}"


class CampaignSubmission(TenantModel):
    """One lead posted to a campaign through the ingest API: its intake outcome and the supplier's payout.

    Supplier statistics count these rows; the redistribution sweep uses them to route leads whose submission was
    stored but could only be processed later.
    """

    # Indexed with the time (``campaigns_csub_org_created_idx``), as sales are.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    submission = models.OneToOneField(
        "leads.InboundSubmission", on_delete=models.CASCADE, related_name="campaign_submission"
    )
    # Looked up through ``campaigns_csub_campaign_idx`` and ``campaigns_csub_supplier_idx``, which lead with them.
    campaign = models.ForeignKey(Campaign, on_delete=models.RESTRICT, related_name="submissions", db_index=False)
    supplier = models.ForeignKey(
        Supplier, null=True, blank=True, on_delete=models.RESTRICT, related_name="submissions", db_index=False
    )
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=10, choices=SubmissionOutcome.choices)
    is_test = models.BooleanField(default=False, help_text="Tagged test-lead: never sold, never paid for")
    payout = money_field(default=ZERO, help_text="Owed to the supplier for this lead (accepted, not a test)")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["supplier", "created_at"], name="campaigns_csub_supplier_idx"),
            models.Index(fields=["campaign", "created_at"], name="campaigns_csub_campaign_idx"),
            models.Index(fields=["organization", "created_at"], name="campaigns_csub_org_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(payout__gte=0), name="campaigns_csub_payout_gte_0"),
            models.CheckConstraint(
                condition=Q(payout=0) | Q(outcome=SubmissionOutcome.ACCEPTED, is_test=False),
                name="campaigns_csub_payout_accepted_only",
            ),
        ]

    def __str__(self) -> str:
        return f"Submission {self.submission_id} to campaign {self.campaign_id}: {self.outcome}"


# Deliveries -------------------------------------------------------------------------------------------------------------


class DeliveryMethod(TenantModel):
    """One way a buyer receives its leads. Email, SMS and WhatsApp go to ``destination``; a signed webhook or a CRM
    post goes to ``webhook_endpoint`` (an integrations endpoint with a buyer purpose, signed and retried there).

    A CRM post sends ``field_template`` rendered for the lead: ``{"FirstName": "{first_name}", "Age":
    "{custom.age}"}``; a value that is one placeholder keeps the field's type.
    """

    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="delivery_methods")
    kind = models.CharField(max_length=10, choices=DeliveryKind.choices)
    destination = models.CharField(max_length=254, blank=True, help_text="Email address or E.164 phone number")
    webhook_endpoint = models.OneToOneField(
        "integrations.WebhookEndpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="buyer_delivery_method",
    )
    field_template = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["buyer_id", "kind", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[DeliveryKind.WEBHOOK, DeliveryKind.CRM]) | ~Q(destination=""),
                name="campaigns_delivery_method_destination",
            )
        ]

    def __str__(self) -> str:
        target = self.destination or (self.webhook_endpoint.url if self.webhook_endpoint_id else "")
        return f"{self.get_kind_display()} → {target}"


class SaleDelivery(TenantModel):
    """A sale on its way to one of the buyer's delivery methods: unique per (sale, method), so a sale is delivered
    once per method however often its task runs. Webhook and CRM kinds hand over to a ``WebhookDelivery``."""

    sale = models.ForeignKey(LeadSale, on_delete=models.CASCADE, related_name="deliveries")
    method = models.ForeignKey(DeliveryMethod, on_delete=models.RESTRICT, related_name="deliveries")
    kind = models.CharField(max_length=10, choices=DeliveryKind.choices)
    status = models.CharField(max_length=10, choices=SaleDeliveryStatus.choices, default=SaleDeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=120, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    webhook_delivery = models.OneToOneField(
        "integrations.WebhookDelivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "sale deliveries"
        constraints = [models.UniqueConstraint(fields=["sale", "method"], name="campaigns_sale_delivery_unique")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="campaigns_delivery_due_idx",
                condition=Q(status=SaleDeliveryStatus.PENDING),
            )
        ]

    def __str__(self) -> str:
        return f"Sale {self.sale_id} by {self.kind}: {self.status}"


# Returns, buyer portal, auto-recharge ----------------------------------------------------------------------------------


class LeadReturn(TenantModel):
    """A buyer sending a delivered lead back within the campaign's return window; the seller decides."""

    sale = models.OneToOneField(LeadSale, on_delete=models.CASCADE, related_name="lead_return")
    buyer = models.ForeignKey(Buyer, on_delete=models.RESTRICT, related_name="returns")
    campaign = models.ForeignKey(Campaign, on_delete=models.RESTRICT, related_name="returns")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=ReturnReason.choices)
    note = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=ReturnStatus.choices, default=ReturnStatus.REQUESTED)
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    refund_entry = models.OneToOneField(
        WalletEntry, null=True, blank=True, on_delete=models.RESTRICT, related_name="lead_return"
    )
    resell = models.BooleanField(default=False, help_text="Offer the lead to the campaign's other buyers again")

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status", "requested_at"], name="campaigns_return_queue_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status=ReturnStatus.REQUESTED, decided_at__isnull=True)
                | (~Q(status=ReturnStatus.REQUESTED) & Q(decided_at__isnull=False)),
                name="campaigns_return_decided",
            )
        ]

    def __str__(self) -> str:
        return f"Return of sale {self.sale_id}: {self.status}"


class BuyerPortalUser(TenantModel):
    """A person who signs in to the buyer portal for one buyer. Not a ``Membership``: portal users never see the
    organization's CRM, only what was delivered to their buyer (``campaigns.portal``)."""

    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="portal_users")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="buyer_portal_accesses")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One buyer per person and organization keeps "whose portal is this" unambiguous.
            models.UniqueConstraint(fields=["organization", "user"], name="campaigns_portal_user_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} for {self.buyer}"


class BuyerInvite(TenantModel):
    """A code people use to register themselves in the buyer portal: for an existing buyer, or (no buyer) as a
    new buyer of the organization."""

    code = models.CharField(max_length=32, unique=True)
    buyer = models.ForeignKey(Buyer, null=True, blank=True, on_delete=models.CASCADE, related_name="invites")
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty means any number")
    use_count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Invite {self.code}"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        if self.max_uses is not None and self.use_count >= self.max_uses:
            return "used up"
        return "active"


class AutoRecharge(TenantModel):
    """One auto-recharge of a wallet through ``billing.charging``; the idempotency key makes a retried task charge
    once."""

    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="auto_recharges")
    idempotency_key = models.CharField(max_length=120, unique=True)
    amount = money_field(validators=[MinValueValidator(Decimal("0.01"))])
    status = models.CharField(max_length=10, choices=RechargeStatus.choices, default=RechargeStatus.PENDING)
    provider = models.CharField(max_length=40, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    error = models.CharField(max_length=500, blank=True)
    balance_before = money_field()
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Recharge of {self.amount} for buyer {self.buyer_id}: {self.status}"
