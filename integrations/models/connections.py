"""Inbound connections: one row per lead source an organization has plugged in (a Facebook page, a Google Ads
lead form, a Zapier zap, a hosted form …), with its encrypted credentials, settings and health."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadflow.tenancy.models import TenantModel

from ..constants import ConnectionStatus, IntegrationProvider
from ..crypto import decrypt_json, encrypt_json


class EncryptedJSONField(models.TextField):
    """A dict stored as one Fernet token: the column never holds the plaintext, and cannot be searched."""

    description = "A JSON object encrypted at rest"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return decrypt_json(value)

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        return decrypt_json(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt_json(dict(value))

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise NotImplementedError("encrypted credentials cannot be searched")
        return super().get_lookup(lookup_name)


class IntegrationConnection(TenantModel):
    provider = models.CharField(max_length=16, choices=IntegrationProvider.choices)
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.CONNECTED)
    # Tokens, keys and secrets: {"page_access_token": …}, {"google_key": …}, {"hmac_secret": …}.
    credentials = EncryptedJSONField()
    # Everything else: field mapping and defaults, page and form ids, sync options.
    settings = models.JSONField(default=dict, blank=True)
    # In the URL a provider posts to (generic webhooks, Google Ads): identifies the connection, is not its secret
    # alone (Google also sends its key; a webhook may add an HMAC secret).
    public_token = models.CharField(max_length=64, unique=True)
    # The provider's id for what is connected (a Facebook page id): how app-wide webhooks find the connection.
    external_account_id = models.CharField(max_length=120, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_errors = models.PositiveIntegerField(default=0)
    # Backfills ask the provider for what was created since this moment.
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "name", "id"]
        indexes = [
            models.Index(
                fields=["provider", "external_account_id"],
                name="integ_conn_account_idx",
                condition=~Q(external_account_id=""),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(provider__in=IntegrationProvider.values), name="integ_conn_provider_valid"
            ),
            models.CheckConstraint(condition=Q(status__in=ConnectionStatus.values), name="integ_conn_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.name}"

    @property
    def is_receiving(self) -> bool:
        return self.status != ConnectionStatus.DISCONNECTED

    def credential(self, name: str, default: Any = "") -> Any:
        return (self.credentials or {}).get(name, default)
