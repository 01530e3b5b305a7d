"""Outbound webhooks: endpoints, the messages sent to them, one delivery per message and endpoint, every attempt.

The shape follows Saleor's: a payload is stored once (``WebhookMessage``), fans out to one ``WebhookDelivery`` per
endpoint (unique, so an event handled twice still delivers once), and each try is a ``WebhookAttempt``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadflow.tenancy.models import TenantModel

from ..constants import WebhookAttemptTrigger, WebhookDeliveryStatus, WebhookEndpointPurpose


class WebhookEndpoint(TenantModel):
    """A URL LeadFlow signs and posts events to: an organization's subscription, or (later) a buyer's webhook."""

    purpose = models.CharField(
        max_length=16, choices=WebhookEndpointPurpose.choices, default=WebhookEndpointPurpose.SUBSCRIPTION
    )
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # "whsec_" + base64 of random bytes; the HMAC key is the decoded bytes (Standard Webhooks).
    secret = models.CharField(max_length=128)
    # After a rotation the old secret still signs (a second `v1,` signature) for a while, so receivers can switch.
    previous_secret = models.CharField(max_length=128, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    # Circuit breaker: set by the first failed attempt after a success, cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["organization", "purpose"], name="integ_endpoint_active_idx", condition=Q(is_active=True)
            )
        ]

    def __str__(self) -> str:
        return self.description or self.url

    def signing_secrets(self) -> list[str]:
        """The secrets that sign a request now: the current one, and the rotated-out one during its grace period."""
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > timezone.now()
        ):
            return [self.secret, self.previous_secret]
        return [self.secret]

    @property
    def secret_hint(self) -> str:
        """Enough of the secret to tell two apart, never enough to use."""
        return f"{self.secret[:10]}…"


class WebhookMessage(TenantModel):
    """One event's payload, stored once however many endpoints receive it."""

    # Sent as `webhook-id`: the same on every retry and replay, so receivers can use it to ignore repeats.
    message_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    # What produced the message (e.g. "outbox:123"): the same source never makes two messages.
    source_key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source_key"],
                condition=~Q(source_key=""),
                name="integ_message_source_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class WebhookDelivery(TenantModel):
    """A message on its way to one endpoint; the attempt task locks this row, so a delivery succeeds at most once."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=12, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempt_count = models.PositiveSmallIntegerField(default=0)
    # Attempts since the last replay: the retry schedule restarts when someone replays a delivery.
    scheduled_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["message", "endpoint"], name="integ_delivery_message_endpoint_unique")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="integ_delivery_due_idx",
                condition=Q(status=WebhookDeliveryStatus.PENDING),
            ),
            models.Index(fields=["endpoint", "-created_at"], name="integ_delivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.message_id} to endpoint {self.endpoint_id} ({self.status})"


class WebhookAttempt(TenantModel):
    """One HTTP request of a delivery, kept whatever happened: the log people read when a receiver misbehaves."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    trigger = models.CharField(
        max_length=12, choices=WebhookAttemptTrigger.choices, default=WebhookAttemptTrigger.SCHEDULED
    )
    started_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="integ_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.status_code or self.error}"
