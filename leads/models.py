"""Leads and everything that happens to them: stages, submissions, activity, notes, rules, imports, the outbox."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Lower, Upper
from django.utils import timezone

from leadflow.tenancy.models import TenantModel

from .constants import (
    ActivityKind,
    Grade,
    ImportStatus,
    LeadSource,
    RuleOperator,
    StageKind,
    SubmissionStatus,
)


class PipelineStage(TenantModel):
    name = models.CharField(max_length=40)
    kind = models.CharField(max_length=8, choices=StageKind.choices, default=StageKind.OPEN)
    position = models.PositiveSmallIntegerField(default=0)
    color = models.CharField(max_length=7, default="#6366f1")

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint("organization", Lower("name"), name="leads_stage_name_unique")]

    def __str__(self) -> str:
        return self.name


class InboundSubmission(TenantModel):
    """Every payload exactly as it arrived, stored before anything else happens so it can always be replayed."""

    source = models.CharField(max_length=16, choices=LeadSource.choices)
    raw_body = models.TextField(blank=True)
    content_type = models.CharField(max_length=120, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    # Where it came from inside the source: an integration id, a form id, an import row …
    context = models.JSONField(default=dict, blank=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=SubmissionStatus.choices, default=SubmissionStatus.RECEIVED)
    error = models.JSONField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    lead = models.ForeignKey("Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["organization", "status", "received_at"], name="leads_sub_status_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="leads_submission_idempotency_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} submission {self.pk} ({self.status})"


class Lead(TenantModel):
    # Every index of this table starts with the organization, so a single-column one would only cost each insert.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    source = models.CharField(max_length=16, choices=LeadSource.choices, default=LeadSource.MANUAL)
    external_id = models.CharField(max_length=255, blank=True, help_text="The source's own id for this lead")

    # Contact
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    full_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164")
    company = models.CharField(max_length=255, blank=True)
    job_title = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=120, blank=True)
    state = models.CharField("state / region code", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    custom = models.JSONField(default=dict, blank=True)

    # Attribution
    utm_source = models.CharField(max_length=255, blank=True)
    utm_medium = models.CharField(max_length=255, blank=True)
    utm_campaign = models.CharField(max_length=255, blank=True)
    utm_term = models.CharField(max_length=255, blank=True)
    utm_content = models.CharField(max_length=255, blank=True)
    gclid = models.CharField(max_length=255, blank=True)
    fbclid = models.CharField(max_length=255, blank=True)
    ad_id = models.CharField(max_length=120, blank=True)
    form_id = models.CharField(max_length=120, blank=True)
    ad_campaign_id = models.CharField(max_length=120, blank=True)
    landing_page = models.URLField(max_length=1000, blank=True)
    referrer = models.URLField(max_length=1000, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    # Consent
    consent_given = models.BooleanField(default=False)
    consent_text = models.TextField(blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_method = models.CharField(max_length=120, blank=True)
    consent_certificate_url = models.URLField(max_length=1000, blank=True)

    # Work
    stage = models.ForeignKey(PipelineStage, on_delete=models.PROTECT, related_name="leads")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_leads"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(default=0)
    grade = models.CharField(max_length=4, choices=Grade.choices, default=Grade.COLD)
    score_reasons = models.JSONField(default=list, blank=True)
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    deal_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    won_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    won_on = models.DateField(null=True, blank=True)
    lost_reason = models.CharField(max_length=255, blank=True)
    over_quota = models.BooleanField(default=False)

    received_at = models.DateTimeField(default=timezone.now)
    first_contacted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    duplicate_of = models.ForeignKey(
        # Indexed only where set (see Meta): most leads are originals, and a NULL entry per lead is pure cost.
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="duplicates",
        db_index=False,
    )
    duplicate_count = models.PositiveIntegerField(default=0)

    # Search: a word index (names, company, email, phone) and a lower-cased haystack for trigram substring search.
    search_vector = models.GeneratedField(
        expression=SearchVector("full_name", "company", "email", "phone", "city", config="simple"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    search_text = models.GeneratedField(
        expression=Lower(
            Concat(
                "full_name",
                Value(" "),
                "email",
                Value(" "),
                "phone",
                Value(" "),
                "company",
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-received_at", "-id"], name="leads_newest_idx"),
            models.Index(fields=["organization", "stage", "-received_at"], name="leads_stage_idx"),
            models.Index(fields=["organization", "owner", "-received_at"], name="leads_owner_idx"),
            models.Index(fields=["organization", "source", "-received_at"], name="leads_source_idx"),
            models.Index(fields=["organization", "email"], name="leads_email_idx", condition=~Q(email="")),
            models.Index(fields=["organization", "phone"], name="leads_phone_idx", condition=~Q(phone="")),
            # "Score at least N" lists: the few high scorers are fetched and sorted instead of walking every newer
            # lead to find them. Leads are scored as they arrive, so this costs no second write per lead.
            models.Index(fields=["organization", "score"], name="leads_score_idx"),
            # The unassigned queue, oldest first.
            models.Index(
                fields=["organization", "received_at"],
                name="leads_unassigned_idx",
                condition=Q(owner__isnull=True, duplicate_of__isnull=True),
            ),
            # The search box matches a city exactly (lead_search); it needs an index to combine with the trigram one.
            models.Index(F("organization"), Upper("city"), name="leads_city_idx"),
            models.Index(fields=["duplicate_of"], name="leads_duplicates_idx", condition=Q(duplicate_of__isnull=False)),
            GinIndex(fields=["search_vector"], name="leads_search_vector_idx"),
            GinIndex(fields=["search_text"], name="leads_search_trgm_idx", opclasses=["gin_trgm_ops"]),
            GinIndex(fields=["tags"], name="leads_tags_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "external_id"],
                condition=~Q(external_id=""),
                name="leads_external_id_unique",
            ),
            models.CheckConstraint(condition=Q(score__lte=100), name="leads_score_lte_100"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.full_name or self.email or self.phone or f"Lead {self.pk}"

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of_id is not None


class LeadActivity(TenantModel):
    """The timeline: one row per thing that happened to a lead, newest first."""

    # The timeline is always read by lead (``leads_activity_lead_idx`` leads with it): no index of their own for
    # the organization (only deleting an organization looks its rows up that way, a scan once) or the lead, and the
    # actor indexed only where there is one (most entries are automatic).
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities", db_index=False)
    kind = models.CharField(max_length=16, choices=ActivityKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    message = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-created_at"], name="leads_activity_lead_idx"),
            models.Index(fields=["actor"], name="leads_activity_actor_idx", condition=Q(actor__isnull=False)),
        ]
        verbose_name_plural = "lead activities"

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"


class LeadNote(TenantModel):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.body[:60]


class ScoringRule(TenantModel):
    """An organization's own scoring rule: "budget is at least 50000 → +20"."""

    label = models.CharField(max_length=120)
    field = models.CharField(
        max_length=80, help_text="A lead field (source, state, company, …) or a custom field as custom.<name>"
    )
    operator = models.CharField(max_length=12, choices=RuleOperator.choices)
    value = models.CharField(max_length=255, blank=True)
    points = models.SmallIntegerField(help_text="Added to the score when the rule matches; may be negative")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(points__gte=-100, points__lte=100), name="leads_rule_points_range")
        ]

    def __str__(self) -> str:
        return self.label


class AssignmentRule(TenantModel):
    """Route leads of a source and/or state to some agents; the first matching rule wins."""

    name = models.CharField(max_length=120)
    source = models.CharField(max_length=16, choices=LeadSource.choices, blank=True)
    states = ArrayField(models.CharField(max_length=8), default=list, blank=True)
    agents = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    def matches(self, lead: Lead) -> bool:
        if self.source and lead.source != self.source:
            return False
        return not self.states or lead.state in self.states


class LeadImport(TenantModel):
    """A CSV upload: mapped, previewed, then imported row by row in the background through the intake pipeline."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=255)
    content = models.BinaryField()
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, blank=True, help_text="CSV column → lead field")
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    status = models.CharField(max_length=12, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.filename

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.COMPLETED else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class MonthlyLeadUsage(TenantModel):
    """Accepted leads per calendar month (the organization's time zone), against the plan's quota."""

    month = models.DateField()
    lead_count = models.PositiveIntegerField(default=0)
    over_quota_alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month"]
        constraints = [models.UniqueConstraint(fields=["organization", "month"], name="leads_usage_month_unique")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.lead_count}"


class OutboxEvent(TenantModel):
    """A domain event written in the same transaction as the change it announces.

    It is handed to Celery when the transaction commits; beat re-sends any that were not handled (broker down,
    worker lost). Handlers run once: the task locks the row and skips it when ``handled_at`` is set.
    """

    topic = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["created_at"], name="leads_outbox_pending_idx", condition=Q(handled_at__isnull=True)),
            # A worker's batch: one organization's oldest pending events of one topic.
            models.Index(
                fields=["organization", "topic", "created_at"],
                name="leads_outbox_org_pending_idx",
                condition=Q(handled_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
