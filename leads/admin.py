"""The operator console's view of leads: read-mostly, with replay for stuck submissions."""

from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.db import models

from accounts.services import audit_record

from .constants import SubmissionStatus
from .intake.pipeline import submission_process
from .models import (
    AssignmentRule,
    InboundSubmission,
    Lead,
    LeadActivity,
    LeadImport,
    LeadNote,
    MonthlyLeadUsage,
    OutboxEvent,
    PipelineStage,
    ScoringRule,
)
from .services.outbox import outbox_handle


class ActivityInline(admin.TabularInline):
    model = LeadActivity
    extra = 0
    fields = ["created_at", "kind", "message", "actor"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "display_name",
        "email",
        "phone",
        "source",
        "stage",
        "owner",
        "score",
        "grade",
        "organization",
        "received_at",
    ]
    list_filter = ["source", "grade", "over_quota", "received_at"]
    search_fields = ["email", "phone", "full_name", "company", "external_id"]
    raw_id_fields = ["organization", "owner", "duplicate_of", "stage"]
    readonly_fields = ["received_at", "created_at", "updated_at", "score", "grade", "score_reasons", "duplicate_count"]
    show_full_result_count = False  # no COUNT(*) over millions of rows on every page
    list_select_related = ["stage", "owner", "organization"]
    inlines = [ActivityInline]
    date_hierarchy = "received_at"
    formfield_overrides = {models.URLField: {"form_class": forms.URLField, "assume_scheme": "https"}}


@admin.register(InboundSubmission)
class InboundSubmissionAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "source", "status", "received_at", "attempts", "lead"]
    list_filter = ["status", "source", "received_at"]
    search_fields = ["idempotency_key", "raw_body"]
    raw_id_fields = ["organization", "lead"]
    readonly_fields = [f.name for f in InboundSubmission._meta.fields]
    show_full_result_count = False
    actions = ["replay"]

    @admin.action(description="Process the selected submissions again")
    def replay(self, request, queryset):
        outcomes: dict = {}
        for submission in queryset.exclude(
            status__in=[SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE]
        ).select_related("organization"):
            outcome = submission_process(submission)
            replayed = outcomes.setdefault(submission.organization, {})
            replayed[submission.pk] = outcome.status
        # One audit entry per organization: which payloads an operator replayed, and what became of them.
        for organization, replayed in outcomes.items():
            audit_record(
                organization=organization,
                action="submissions.replayed",
                actor=request.user,
                changes={"submissions": replayed},
                request=request,
            )
        done = sum(len(replayed) for replayed in outcomes.values())
        statuses = Counter(status for replayed in outcomes.values() for status in replayed.values())
        summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "nothing"
        self.message_user(
            request,
            f"Reprocessed {done} submission(s): {summary}; accepted and duplicate ones were skipped.",
            messages.SUCCESS,
        )


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "topic", "created_at", "handled_at", "attempts", "last_error"]
    list_filter = ["topic"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    actions = ["handle_now"]

    @admin.action(description="Run the handlers of the selected events now")
    def handle_now(self, request, queryset):
        handled = sum(outbox_handle(event.pk) for event in queryset.filter(handled_at__isnull=True))
        self.message_user(request, f"Handled {handled} event(s).", messages.SUCCESS)


@admin.register(PipelineStage)
class PipelineStageAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "kind", "position"]
    list_filter = ["kind"]
    raw_id_fields = ["organization"]


@admin.register(LeadImport)
class LeadImportAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "filename",
        "status",
        "total_rows",
        "created_count",
        "duplicate_count",
        "error_count",
        "created_at",
    ]
    list_filter = ["status"]
    exclude = ["content"]
    readonly_fields = [
        "organization",
        "created_by",
        "filename",
        "headers",
        "mapping",
        "tags",
        "status",
        "total_rows",
        "processed_rows",
        "created_count",
        "duplicate_count",
        "error_count",
        "errors",
        "failure",
        "started_at",
        "finished_at",
    ]


@admin.register(MonthlyLeadUsage)
class MonthlyLeadUsageAdmin(admin.ModelAdmin):
    list_display = ["organization", "month", "lead_count", "over_quota_alerted_at"]
    raw_id_fields = ["organization"]


for model, fields in (
    (LeadNote, ["lead", "author", "created_at"]),
    (ScoringRule, ["label", "organization", "field", "operator", "value", "points", "is_active"]),
    (AssignmentRule, ["name", "organization", "source", "position", "is_active"]),
):
    admin.site.register(model, list_display=fields, raw_id_fields=["organization"])
