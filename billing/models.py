from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import models
from django.utils import timezone

from accounts.constants import Currency
from leadflow.tenancy.models import TenantManager, TenantModel


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


class BillingProvider(models.TextChoices):
    OFFLINE = "offline", "Offline (development)"
    RAZORPAY = "razorpay", "Razorpay"
    STRIPE = "stripe", "Stripe"


class Subscription(TenantModel):
    """An organization's plan and where it stands: LeadFlow's source of truth, mirrored from provider events
    (``billing.lifecycle``). Status changes go through ``subscription_transition`` only."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.TRIALING)
    interval = models.CharField(max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTHLY)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    provider = models.CharField(max_length=16, choices=BillingProvider.choices, default=BillingProvider.OFFLINE)
    provider_customer_id = models.CharField(max_length=64, blank=True)
    provider_subscription_id = models.CharField(max_length=64, blank=True)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # A downgrade waits for the renewal; the provider's event applies it.
    pending_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    past_due_since = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    # When the provider produced the state we last applied: an older event arriving late changes nothing.
    provider_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="billing_subscription_one_per_org"),
            models.UniqueConstraint(
                fields=["provider", "provider_subscription_id"],
                condition=~models.Q(provider_subscription_id=""),
                name="billing_subscription_provider_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} ({self.status})"

    @property
    def trial_days_left(self) -> int | None:
        if self.status != SubscriptionStatus.TRIALING or not self.trial_ends_at:
            return None
        remaining = self.trial_ends_at - timezone.now()
        return max(0, remaining.days + (1 if remaining.seconds else 0))

    @property
    def price(self) -> PlanPrice | None:
        return self.plan.price_for(self.currency, self.interval)

    @property
    def grace_ends_at(self):
        from django.conf import settings

        if self.status != SubscriptionStatus.PAST_DUE or not self.past_due_since:
            return None
        return self.past_due_since + timedelta(days=settings.BILLING_GRACE_DAYS)


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=14, decimal_places=2, **kwargs)


class ProviderPlan(models.Model):
    """A plan price as a provider knows it (a Razorpay plan_…, a Stripe price_…), created the first time it is
    needed. Keyed by the amount charged (tax included), so a change of price or tax rate makes a new one."""

    price = models.ForeignKey(PlanPrice, on_delete=models.CASCADE, related_name="provider_plans")
    provider = models.CharField(max_length=16, choices=BillingProvider.choices)
    amount_minor = models.PositiveBigIntegerField(help_text="What the provider charges, in the currency's minor unit")
    provider_plan_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["price", "provider", "amount_minor"], name="billing_providerplan_unique")
        ]

    def __str__(self) -> str:
        return f"{self.price} on {self.provider}: {self.provider_plan_id}"


class BillingEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class BillingEvent(models.Model):
    """One provider event (a verified webhook, or an offline checkout's confirmation), recorded once.

    The unique (provider, event_id) makes a re-delivery a no-op; ``billing.tasks.process_billing_event`` applies
    it after commit, and the admin's "Process again" replays it (handlers are safe to run twice).
    """

    provider = models.CharField(max_length=16, choices=BillingProvider.choices)
    event_id = models.CharField(max_length=128)
    event_type = models.CharField(max_length=64, db_index=True)
    payload = models.JSONField()
    occurred_at = models.DateTimeField(help_text="When the provider says it happened")
    # Null until the event names an organization we know.
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=10, choices=BillingEventStatus.choices, default=BillingEventStatus.RECEIVED)
    result = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="billing_event_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class InvoiceStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class TaxKind(models.TextChoices):
    GST = "gst", "GST"
    VAT = "vat", "VAT"
    NONE = "none", "No tax"


class InvoiceCounter(TenantModel):
    """The organization's last invoice number. Locked (``FOR UPDATE``) to number the next invoice, so two
    invoices created at once get consecutive numbers and a rolled-back one leaves no gap."""

    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="billing_invoicecounter_one_per_org")]

    def __str__(self) -> str:
        return f"Invoice counter of {self.organization_id}: {self.last_number}"


class Invoice(TenantModel):
    """Our invoice, mirrored from a provider's payment or built from metered usage. Amounts are Decimal in the
    invoice's currency, quantized to its minor unit; ``total = subtotal + tax_total``."""

    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=32)
    status = models.CharField(max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.OPEN)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    subtotal = money_field()
    tax_total = money_field()
    total = money_field()
    # Tax as it applied when the invoice was issued (the organization's details may change later).
    tax_kind = models.CharField(max_length=4, choices=TaxKind.choices)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, help_text="Percent")
    tax_note = models.CharField(max_length=255, blank=True)
    sac_code = models.CharField("SAC", max_length=8, blank=True)
    supplier_tax_id = models.CharField(max_length=32, blank=True)
    customer_name = models.CharField(max_length=120)
    customer_address = models.TextField(blank=True)
    customer_country = models.CharField(max_length=2)
    customer_tax_id = models.CharField("customer GSTIN / VAT id", max_length=32, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=16, choices=BillingProvider.choices)
    # The provider's invoice or payment behind it: the same one is never invoiced twice.
    provider_reference = models.CharField(max_length=128, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "sequence"], name="billing_invoice_sequence_unique"),
            models.UniqueConstraint(fields=["organization", "number"], name="billing_invoice_number_unique"),
            models.UniqueConstraint(
                fields=["provider", "provider_reference"],
                condition=~models.Q(provider_reference=""),
                name="billing_invoice_provider_reference_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(total=models.F("subtotal") + models.F("tax_total")), name="billing_invoice_total"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def tax_split(self) -> list[tuple[str, Decimal, Decimal]]:
        """The tax lines shown on the invoice: (label, rate %, amount). GST within one state is half CGST, half
        SGST; across states (or with no supplier GSTIN state to compare) it is IGST."""
        if self.tax_kind != TaxKind.GST:
            return [("VAT", self.tax_rate, self.tax_total)] if self.tax_kind == TaxKind.VAT else []
        supplier_state, customer_state = self.supplier_tax_id[:2], self.customer_tax_id[:2]
        if supplier_state and supplier_state == customer_state:
            half_rate = self.tax_rate / 2
            cgst = (self.tax_total / 2).quantize(Decimal("0.01"))
            return [("CGST", half_rate, cgst), ("SGST", half_rate, self.tax_total - cgst)]
        return [("IGST", self.tax_rate, self.tax_total)]


class InvoiceLineKind(models.TextChoices):
    SUBSCRIPTION = "subscription", "Subscription"
    USAGE = "usage", "Metered usage"
    TOP_UP = "top_up", "Wallet top-up"


class InvoiceLine(TenantModel):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=12, choices=InvoiceLineKind.choices)
    description = models.CharField(max_length=255)
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit_amount = models.DecimalField(max_digits=14, decimal_places=4)
    amount = money_field(help_text="Before tax, quantized")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["invoice_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class UsageInvoiceRun(TenantModel):
    """One organization's metered usage for one period, invoiced once (the monthly task may run twice)."""

    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    invoice = models.OneToOneField(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "period_start"], name="billing_usage_run_once")]

    def __str__(self) -> str:
        return f"Usage of {self.organization_id} from {self.period_start:%Y-%m-%d}"


class Refund(TenantModel):
    """Money given back, mirrored from the provider (for operators' revenue figures)."""

    provider = models.CharField(max_length=16, choices=BillingProvider.choices)
    provider_refund_id = models.CharField(max_length=128)
    provider_payment_id = models.CharField(max_length=128, blank=True)
    amount = money_field()
    currency = models.CharField(max_length=3, choices=Currency.choices)
    refunded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-refunded_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_refund_id"], name="billing_refund_once"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} {self.currency}"


class BuyerPaymentMethod(TenantModel):
    """A buyer's payment method saved at a top-up for off-session auto-recharge: a Stripe customer and
    PaymentMethod, or a Razorpay customer and recurring token."""

    buyer = models.OneToOneField("campaigns.Buyer", on_delete=models.CASCADE, related_name="billing_payment_method")
    provider = models.CharField(max_length=16, choices=BillingProvider.choices)
    customer_id = models.CharField(max_length=64)
    method_id = models.CharField(max_length=64, help_text="Stripe pm_… or Razorpay token_…")
    label = models.CharField(max_length=64, blank=True, help_text="e.g. visa •••• 4242")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.label or self.method_id}"


class TopUpKind(models.TextChoices):
    CHECKOUT = "checkout", "Checkout"
    AUTO_RECHARGE = "auto_recharge", "Auto-recharge"


class TopUpStatus(models.TextChoices):
    PENDING = "pending", "Waiting for payment"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"


class WalletTopUp(TenantModel):
    """Money a buyer pays into its wallet. The wallet is credited from the provider's verified webhook only
    (``wallet_credit`` with the payment reference), never from the browser's return."""

    buyer = models.ForeignKey("campaigns.Buyer", on_delete=models.CASCADE, related_name="billing_top_ups")
    kind = models.CharField(max_length=14, choices=TopUpKind.choices, default=TopUpKind.CHECKOUT)
    amount = money_field()
    currency = models.CharField(max_length=3, choices=Currency.choices)
    provider = models.CharField(max_length=16, choices=BillingProvider.choices)
    status = models.CharField(max_length=8, choices=TopUpStatus.choices, default=TopUpStatus.PENDING)
    save_method = models.BooleanField(default=False, help_text="Keep the payment method for auto-recharge")
    # A Razorpay order_…, a Stripe Checkout cs_… or PaymentIntent pi_…, or the offline token.
    provider_reference = models.CharField(max_length=128, blank=True)
    payment_reference = models.CharField(max_length=128, blank=True, help_text="The payment that paid it")
    checkout_url = models.URLField(max_length=1024, blank=True)
    checkout_options = models.JSONField(default=dict, blank=True, help_text="Razorpay Checkout.js options")
    idempotency_key = models.CharField(max_length=128, blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="billing_topup_amount_gt_0"),
            models.UniqueConstraint(
                fields=["provider", "provider_reference"],
                condition=~models.Q(provider_reference=""),
                name="billing_topup_reference_unique",
            ),
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="billing_topup_idempotency_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Top-up {self.amount} {self.currency} for buyer {self.buyer_id} ({self.status})"


class CheckoutStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"


class PlanCheckout(models.Model):
    """A plan checkout, from the public pricing page (no account or organization yet) or from an organization's
    billing page (``organization`` set). The provider's confirmation completes it (``billing.checkout``): for a
    signup it creates the user, the organization and the subscription."""

    token = models.CharField(max_length=64, unique=True)
    email = models.EmailField()
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    interval = models.CharField(max_length=8, choices=BillingInterval.choices)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    provider = models.CharField(max_length=16, choices=BillingProvider.choices)
    # What onboarding is prefilled with (business name, country …), also sent as the provider's metadata.
    details = models.JSONField(default=dict, blank=True)
    provider_reference = models.CharField(max_length=128, blank=True)
    checkout_url = models.URLField(max_length=1024, blank=True)
    checkout_options = models.JSONField(default=dict, blank=True, help_text="Razorpay Checkout.js options")
    status = models.CharField(max_length=10, choices=CheckoutStatus.choices, default=CheckoutStatus.OPEN)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    def __str__(self) -> str:
        return f"Checkout for {self.email} ({self.status})"


class MagicLoginLink(models.Model):
    """A one-time sign-in link (only its SHA-256 is stored), sent with the welcome email after a checkout."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    next_url = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Login link for {self.user_id}"
