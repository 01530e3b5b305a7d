"""Lead stages sent back to Meta (Conversions API for CRM, "Conversion Leads"): one row per stage change of a
Facebook lead whose connection opted in, carrying its own retry state and the last answer, so the connection page
and the admin show what Meta was told and what it said."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadflow.tenancy.models import TenantModel

from ..constants import ConversionEventStatus


class ConversionEvent(TenantModel):
    connection = models.ForeignKey(
        "integrations.IntegrationConnection", on_delete=models.CASCADE, related_name="conversion_events"
    )
    # Kept when the lead is deleted: the row is the log of what Meta was sent.
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Meta's leadgen id, a string like every Meta id (they can exceed 2^53); sent as user_data.lead_id.
    leadgen_id = models.CharField(max_length=64)
    # The CRM stage's name, as Meta's payload specification asks ("free form field to capture the stages").
    event_name = models.CharField(max_length=100)
    # When the lead entered the stage (the outbox event's time), not when we got to send it.
    event_time = models.DateTimeField()
    # What produced the row ("outbox:<event id>"): a retried outbox batch never queues a stage twice.
    idempotency_key = models.CharField(max_length=120)
    status = models.CharField(
        max_length=12, choices=ConversionEventStatus.choices, default=ConversionEventStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # Attempts since the last replay: the retry schedule restarts when someone replays an event.
    scheduled_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="integ_conversion_idempotency_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ConversionEventStatus.values), name="integ_conversion_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="integ_conversion_due_idx",
                condition=Q(status=ConversionEventStatus.PENDING),
            ),
            models.Index(fields=["connection", "-created_at"], name="integ_conversion_conn_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} for lead {self.leadgen_id} ({self.status})"
