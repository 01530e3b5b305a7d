"""Messaging: conversations and their messages, templates, opt-outs, automations, notifications, AI usage, and
usage metering.

Usage metering: every message and webhook LeadFlow sends on an organization's behalf, with what it cost us and
what the organization is billed for it (its markup on top), so billing can rebill it later.

Amounts are ``Decimal`` with four places (an SMS costs fractions of a cent) and carry their currency: providers
price in their own (Twilio in USD), which need not be the organization's.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings as django_settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadflow.tenancy.models import TenantManager, TenantModel

from .constants import (
    AutomationAction,
    AutomationTrigger,
    Channel,
    ConversationStatus,
    Direction,
    ExecutionStatus,
    MessageChannel,
    MessagePurpose,
    MessageStatus,
    NotificationChannel,
    NotificationEvent,
    OptOutMethod,
    ProviderEventStatus,
    StepRunStatus,
    TemplateCategory,
    TemplateStatus,
    WhatsAppProvider,
)


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


# Conversations ------------------------------------------------------------------------------------------------------


class MessagingSettings(TenantModel):
    """An organization's channels and rules: which WhatsApp provider, its numbers, quiet hours, the speed-to-lead
    target and the AI budget. One row per organization, made on first use."""

    whatsapp_provider = models.CharField(
        max_length=8, choices=WhatsAppProvider.choices, default=WhatsAppProvider.TWILIO
    )
    whatsapp_enabled = models.BooleanField(default=True)
    sms_enabled = models.BooleanField(default=True)
    email_enabled = models.BooleanField(default=True)
    # Twilio: the numbers inbound messages arrive at (they tell organizations apart) and sends go from.
    twilio_sms_from = models.CharField(
        "Twilio SMS number", max_length=20, blank=True, help_text="E.164, e.g. +15005550006"
    )
    twilio_whatsapp_from = models.CharField("Twilio WhatsApp number", max_length=20, blank=True)
    twilio_messaging_service_sid = models.CharField(max_length=40, blank=True)
    # Meta WhatsApp Cloud API: the business phone number's id, the account (for templates) and an access token.
    meta_phone_number_id = models.CharField(max_length=40, blank=True)
    meta_business_account_id = models.CharField("Meta WhatsApp business account id", max_length=40, blank=True)
    meta_access_token_encrypted = models.TextField(blank=True)
    email_from = models.CharField(max_length=254, blank=True, help_text="Sender of lead emails; blank uses the default")
    email_reply_domain = models.CharField(max_length=120, blank=True, help_text="Inbound email address domain")
    # Quiet hours, in the organization's time zone: automated sends wait until they end.
    quiet_hours_enabled = models.BooleanField(default=False)
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    # Speed to lead: minutes a new lead may wait for its first contact before escalating.
    first_contact_target_minutes = models.PositiveIntegerField(default=5)
    sla_escalation_enabled = models.BooleanField(default=True)
    # AI: a monthly budget in USD for reply suggestions and scoring (0 turns AI off for the organization).
    ai_enabled = models.BooleanField(default=True)
    ai_monthly_budget = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("10.00"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "messaging settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="messaging_settings_one_per_org"),
            models.UniqueConstraint(
                fields=["twilio_sms_from"], condition=~Q(twilio_sms_from=""), name="messaging_twilio_sms_from_unique"
            ),
            models.UniqueConstraint(
                fields=["twilio_whatsapp_from"],
                condition=~Q(twilio_whatsapp_from=""),
                name="messaging_twilio_wa_from_unique",
            ),
            models.UniqueConstraint(
                fields=["meta_phone_number_id"],
                condition=~Q(meta_phone_number_id=""),
                name="messaging_meta_phone_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Messaging settings of {self.organization_id}"


class Conversation(TenantModel):
    """One thread with one address on one channel (a phone on WhatsApp, the same phone by SMS, an email address)."""

    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    # E.164 phone or lower-cased email: the other side.
    address = models.CharField(max_length=254)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    contact_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=ConversationStatus.choices, default=ConversationStatus.OPEN)
    assignee = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unread_count = models.PositiveIntegerField(default=0)
    needs_reply = models.BooleanField(default=False)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=160, blank=True)
    # The lead's last message to us: WhatsApp free-form replies are allowed for 24 hours after it.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_outbound_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "channel", "address"], name="messaging_conversation_address_unique"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status", "-last_message_at"], name="messaging_conv_inbox_idx"),
            models.Index(fields=["organization", "lead"], name="messaging_conv_lead_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} with {self.contact_name or self.address}"


class MessageTemplate(TenantModel):
    """A reusable message. WhatsApp bodies use numbered variables ({{1}}, {{2}}) filled from ``variables`` (lead
    fields, in order); SMS and email bodies name lead fields directly ({{first_name}}, {{custom.budget}}).
    Templates of one name across channels are one message in several forms (automations pick the lead's channel)."""

    name = models.SlugField(max_length=100, allow_unicode=False)
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    language = models.CharField(max_length=10, default="en")
    category = models.CharField(max_length=16, choices=TemplateCategory.choices, default=TemplateCategory.UTILITY)
    subject = models.CharField(max_length=200, blank=True, help_text="Email only")
    body = models.TextField()
    variables = models.JSONField(
        default=list, blank=True, help_text="WhatsApp: the lead field behind {{1}}, {{2}} …, in order"
    )
    status = models.CharField(max_length=10, choices=TemplateStatus.choices, default=TemplateStatus.APPROVED)
    # The provider's handle: a Twilio Content SID (HX…), or for Meta the template's name (the default).
    provider_template_id = models.CharField(max_length=120, blank=True)
    rejection_reason = models.CharField(max_length=255, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name", "channel", "language"], name="messaging_template_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()}, {self.language})"

    @property
    def usable(self) -> bool:
        return self.is_active and self.status == TemplateStatus.APPROVED


class TemplateVariant(TenantModel):
    """An A/B alternative of a template's body; sends are split by weight between the template itself (variant A)
    and its variants, and each message remembers which it was."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=20)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True, help_text="SMS and email; a WhatsApp variant is another approved template")
    provider_template_id = models.CharField(max_length=120, blank=True)
    weight = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "label"]
        constraints = [models.UniqueConstraint(fields=["template", "label"], name="messaging_variant_label_unique")]

    def __str__(self) -> str:
        return f"{self.template.name} / {self.label}"


class Message(TenantModel):
    # Indexed with the time (``messaging_msg_org_created_idx``): analytics reads an organization's messages by day,
    # and the composite index serves lookups by organization alone as well.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    purpose = models.CharField(max_length=12, choices=MessagePurpose.choices, default=MessagePurpose.CONVERSATION)
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    to_address = models.CharField(max_length=254)
    from_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    # [{"url", "content_type"}]
    media = models.JSONField(default=list, blank=True)
    template = models.ForeignKey(MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    template_variant = models.ForeignKey(
        TemplateVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    template_variables = models.JSONField(default=list, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=160, blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    sent_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    automated = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Not before (quiet hours, retries): the deliver task and the sweep leave it alone until then.
    send_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    # For outbound messages: the lead answered after it (and before our next message): reply rates per variant.
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="messaging_message_provider_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="messaging_msg_thread_idx"),
            models.Index(
                fields=["send_after"],
                name="messaging_msg_due_idx",
                condition=Q(status="queued", submitted_at__isnull=True),
            ),
            models.Index(fields=["organization", "template", "created_at"], name="messaging_msg_template_idx"),
            models.Index(fields=["organization", "created_at"], name="messaging_msg_org_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.get_channel_display()} {self.pk} ({self.status})"


class OptOut(TenantModel):
    """An address that asked not to be messaged. Every later send to it, on every channel, is refused; an opt-in
    keyword (START) ends it."""

    address = models.CharField(max_length=254)
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=10, choices=MessageChannel.choices, blank=True)
    method = models.CharField(max_length=10, choices=OptOutMethod.choices)
    keyword = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "address"],
                condition=Q(revoked_at__isnull=True),
                name="messaging_optout_active_unique",
            )
        ]
        indexes = [models.Index(fields=["organization", "lead"], name="messaging_optout_lead_idx")]

    def __str__(self) -> str:
        return f"Opt-out of {self.address}"


class ProviderEvent(models.Model):
    """A provider's webhook request exactly as it arrived (Twilio, Meta, email), stored before anything else so it
    can always be processed again. The organization is known once the body says whose number it was for."""

    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    provider = models.CharField(max_length=20)
    kind = models.CharField(max_length=20)  # message, status, whatsapp, email_inbound, email_tracking
    raw_body = models.TextField(blank=True)
    content_type = models.CharField(max_length=120, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=1000, blank=True)
    signature_valid = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=ProviderEventStatus.choices, default=ProviderEventStatus.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="messaging_event_pending_idx",
                condition=Q(status__in=["received", "failed"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.pk} ({self.status})"


# Automations --------------------------------------------------------------------------------------------------------


class AutomationRule(TenantModel):
    """When ``trigger`` happens to a lead that meets ``conditions``, run the steps in order. Sequences stop when the
    lead replies (``stop_on_reply``), opts out, or is won or lost."""

    name = models.CharField(max_length=120)
    # A rule LeadFlow made (e.g. "instant_welcome"): one per organization, editable, never made twice.
    system_key = models.CharField(max_length=40, blank=True)
    trigger = models.CharField(max_length=20, choices=AutomationTrigger.choices)
    # no_reply / no_activity: {"hours": 24}; stage_changed: {"stage_id": 3} (blank for any stage)
    trigger_config = models.JSONField(default=dict, blank=True)
    # {"match": "all" | "any", "rules": [{"field", "operator", "value"}]}
    conditions = models.JSONField(default=dict, blank=True)
    stop_on_reply = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "system_key"], condition=~Q(system_key=""), name="messaging_rule_system_unique"
            )
        ]
        indexes = [models.Index(fields=["organization", "trigger", "is_active"], name="messaging_rule_trigger_idx")]

    def __str__(self) -> str:
        return self.name


class AutomationStep(TenantModel):
    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    action = models.CharField(max_length=16, choices=AutomationAction.choices)
    # send_template: {"template", "channel"}; assign: {"user_id"}; tag: {"add", "remove"}; change_stage:
    # {"stage_id"}; notify: {"recipients", "message"}; webhook: {"url", "endpoint_id"}; wait: {"minutes"}
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["rule", "position", "id"]

    def __str__(self) -> str:
        return f"{self.rule.name} #{self.position} {self.action}"


class AutomationExecution(TenantModel):
    """One run of a rule for one lead; ``trigger_key`` says which occurrence of the trigger (unique per rule and
    lead, so a redelivered event never starts a second run)."""

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="executions")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    trigger_key = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=ExecutionStatus.choices, default=ExecutionStatus.RUNNING)
    next_step = models.PositiveSmallIntegerField(default=0)
    resume_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=120, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "lead", "trigger_key"], name="messaging_execution_unique")
        ]
        indexes = [
            models.Index(fields=["resume_at"], name="messaging_exec_due_idx", condition=Q(status="waiting")),
            models.Index(fields=["organization", "lead"], name="messaging_exec_lead_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} for lead {self.lead_id} ({self.status})"


class AutomationStepRun(TenantModel):
    """What one step did in one execution: the log, and the guard that makes each step run once."""

    execution = models.ForeignKey(AutomationExecution, on_delete=models.CASCADE, related_name="step_runs")
    step = models.ForeignKey(AutomationStep, null=True, on_delete=models.SET_NULL, related_name="+")
    position = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=16, choices=AutomationAction.choices)
    status = models.CharField(max_length=10, choices=StepRunStatus.choices)
    detail = models.CharField(max_length=500, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ran_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "position"]
        constraints = [models.UniqueConstraint(fields=["execution", "position"], name="messaging_step_run_once")]

    def __str__(self) -> str:
        return f"{self.execution_id} #{self.position} {self.status}"


# Notifications ------------------------------------------------------------------------------------------------------


class Notification(TenantModel):
    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=20, choices=NotificationEvent.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Sent once per key and user ("sla:<lead>", "digest:2026-12-01"): a retried task notifies nobody twice.
    dedupe_key = models.CharField(max_length=120, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="messaging_notification_dedupe",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "user", "-created_at"], name="messaging_notif_user_idx"),
            models.Index(
                fields=["organization", "user"], name="messaging_notif_unread_idx", condition=Q(read_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.title


class NotificationPreference(TenantModel):
    """A member's choice for one event on one channel; no row means the default."""

    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=20, choices=NotificationEvent.choices)
    channel = models.CharField(max_length=10, choices=NotificationChannel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "event", "channel"], name="messaging_preference_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.event}/{self.channel}: {self.enabled}"


class NotificationProfile(TenantModel):
    """Where a member's SMS and WhatsApp notifications go."""

    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, for SMS and WhatsApp notifications")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="messaging_profile_unique")]

    def __str__(self) -> str:
        return f"Notification profile of {self.user_id}"


class SlaEscalation(TenantModel):
    """A lead that was not contacted within the organization's target, escalated once."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="+")
    target_minutes = models.PositiveIntegerField()
    escalated_at = models.DateTimeField(default=timezone.now)
    notified_user_ids = models.JSONField(default=list)

    class Meta:
        ordering = ["-escalated_at"]

    def __str__(self) -> str:
        return f"SLA escalation of lead {self.lead_id}"


# AI assistance ------------------------------------------------------------------------------------------------------


class AiUsage(TenantModel):
    """Tokens and estimated cost of the organization's AI calls in one calendar month, against its budget."""

    month = models.DateField()
    requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))

    class Meta:
        ordering = ["-month"]
        constraints = [models.UniqueConstraint(fields=["organization", "month"], name="messaging_ai_usage_month")]

    def __str__(self) -> str:
        return f"AI usage {self.month:%Y-%m}: {self.cost}"


class AiScoreCache(TenantModel):
    """An AI score of a lead's content (hash of what the model was shown): the same lead is never paid for twice."""

    content_hash = models.CharField(max_length=64)
    result = models.JSONField()
    model = models.CharField(max_length=80)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "content_hash"], name="messaging_ai_score_cache_unique")
        ]

    def __str__(self) -> str:
        return f"AI score {self.content_hash[:12]}"


class AiSuggestionStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved and sent"
    EDITED = "edited", "Edited and sent"
    REJECTED = "rejected", "Rejected"


class AiSuggestion(TenantModel):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="suggestions")
    in_reply_to = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    final_text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=AiSuggestionStatus.choices, default=AiSuggestionStatus.PROPOSED)
    model = models.CharField(max_length=80)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    sent_message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Suggestion {self.pk} ({self.status})"
