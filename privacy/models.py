"""An organization's retention policy: how long raw payloads, webhook logs and closed leads are kept."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from leadflow.tenancy.models import TenantModel

MAX_RETENTION_DAYS = 3650


def _days(help_text: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text=help_text + " Empty keeps them.",
    )


class RetentionPolicy(TenantModel):
    """Applied every night by ``apply_retention`` (and ``manage.py apply_retention``). Empty fields keep data for
    ever, which is also what an organization without a policy gets."""

    raw_submissions_days = _days(
        "Delete raw payloads (inbound submissions, uploaded CSV files) older than this many days."
    )
    webhook_logs_days = _days("Delete outbound webhook messages, deliveries and attempts older than this many days.")
    closed_leads_days = _days("Anonymize won or lost leads untouched for this many days (figures are kept).")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="privacy_retention_one_per_org"),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": 1}),
                    name=f"privacy_retention_{name}_gte_1",
                )
                for name in ("raw_submissions_days", "webhook_logs_days", "closed_leads_days")
            ],
        ]

    def __str__(self) -> str:
        return f"Retention policy of {self.organization_id}"

    @property
    def is_empty(self) -> bool:
        return not (self.raw_submissions_days or self.webhook_logs_days or self.closed_leads_days)
