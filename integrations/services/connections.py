"""Inbound connections: create, configure, disconnect, and keep their health.

Health is recorded by whoever talks to the provider (a webhook view, a fetch task, a sync): a success clears the
error count; each failure counts, and the connection turns to ``error`` — with one email to the organization's
owners — after ``CONNECTION_ERROR_THRESHOLD`` failures in a row, or at once on an authentication error (an expired
page token cannot fix itself). An ``error`` connection still receives: its status is advice, never a reason to
drop a lead. Only ``disconnected`` (the organization's own choice) closes its URLs.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.services import audit_record
from leadflow.exceptions import ServiceError

from ..constants import (
    CONNECTION_ERROR_MAX_CHARS,
    CONNECTION_ERROR_THRESHOLD,
    CONNECTION_PUBLIC_TOKEN_BYTES,
    ConnectionStatus,
    IntegrationProvider,
)
from ..models import IntegrationConnection
from ..providers.generic import validate_mapping_target
from ..selectors.connections import connections_forget

logger = logging.getLogger(__name__)

SUCCESS_WRITE_INTERVAL = timedelta(seconds=1)


def connection_public_token_generate() -> str:
    return secrets.token_urlsafe(CONNECTION_PUBLIC_TOKEN_BYTES)


def connection_secret_generate() -> str:
    return secrets.token_urlsafe(32)


def connection_create(
    *,
    organization,
    provider: str,
    name: str,
    credentials: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    external_account_id: str = "",
    actor=None,
    request=None,
) -> IntegrationConnection:
    """A new connection. Google Ads connections get a generated ``google_key`` unless one is given."""
    if provider not in IntegrationProvider.values:
        raise ServiceError(f"Unknown provider “{provider}”.", field="provider")
    name = (name or "").strip()[:120] or IntegrationProvider(provider).label
    credentials = {key: value for key, value in (credentials or {}).items() if value not in (None, "")}
    if provider == IntegrationProvider.GOOGLE_ADS and not credentials.get("google_key"):
        credentials["google_key"] = connection_secret_generate()
    connection = IntegrationConnection.objects.create(
        organization=organization,
        provider=provider,
        name=name,
        credentials=credentials,
        settings=_clean_settings(provider, settings or {}),
        public_token=connection_public_token_generate(),
        external_account_id=str(external_account_id or "")[:120],
        created_by=actor,
    )
    audit_record(
        organization=organization,
        action="integration_connection.created",
        actor=actor,
        target=connection,
        request=request,
        changes={"provider": [None, provider], "name": [None, name]},
    )
    return connection


def _clean_settings(provider: str, options: dict[str, Any]) -> dict[str, Any]:
    options = dict(options)
    if provider == IntegrationProvider.WEBHOOK:
        mapping, defaults = options.get("mapping") or {}, options.get("defaults") or {}
        if not isinstance(mapping, dict) or not isinstance(defaults, dict):
            raise ServiceError("Send the mapping and the defaults as objects of lead field → value.", field="mapping")
        try:
            options["mapping"] = {
                validate_mapping_target(str(target)): str(path).strip() for target, path in mapping.items() if path
            }
            options["defaults"] = {
                validate_mapping_target(str(target)): value
                for target, value in defaults.items()
                if value not in (None, "")
            }
        except ValueError as error:
            raise ServiceError(str(error), field="mapping") from None
    if provider == IntegrationProvider.FACEBOOK:
        options = _clean_conversion_settings(options)
    return options


CONVERSION_SETTINGS = ("conversions_enabled", "dataset_id", "conversions_stages")


def _clean_conversion_settings(options: dict[str, Any]) -> dict[str, Any]:
    """Sending lead stages to Meta's Conversions API: off unless turned on, and then only with a dataset id (the
    pixel or CRM dataset Meta shows in Events Manager). ``conversions_stages`` lists stage names or kinds (open,
    won, lost) to send; empty sends every stage change."""
    if not any(key in options for key in CONVERSION_SETTINGS):
        return options
    enabled = options.get("conversions_enabled") in (True, "true", "on", "1", 1)
    dataset_id = str(options.get("dataset_id") or "").strip()
    if dataset_id and not dataset_id.isdigit():
        raise ServiceError("A dataset id is a number: copy it from Meta's Events Manager.", field="dataset_id")
    if enabled and not dataset_id:
        raise ServiceError("Enter the dataset (pixel) id the stages are sent to.", field="dataset_id")
    stages = options.get("conversions_stages") or []
    if isinstance(stages, str):
        stages = stages.split(",")
    if not isinstance(stages, list | tuple) or not all(isinstance(stage, str) for stage in stages):
        raise ServiceError("Send the stages as a list of stage names.", field="conversions_stages")
    cleaned_stages = list(dict.fromkeys(stage.strip()[:100] for stage in stages if stage.strip()))
    return {**options, "conversions_enabled": enabled, "dataset_id": dataset_id, "conversions_stages": cleaned_stages}


@transaction.atomic
def connection_update(
    *,
    connection: IntegrationConnection,
    name: str | None = None,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
    actor=None,
    request=None,
) -> IntegrationConnection:
    """Rename, replace settings (validated per provider) and/or merge credentials (an empty value removes one)."""
    changes: dict[str, list] = {}
    if name is not None and name.strip() and name.strip() != connection.name:
        changes["name"] = [connection.name, name.strip()[:120]]
        connection.name = name.strip()[:120]
    if settings is not None:
        cleaned = _clean_settings(connection.provider, {**connection.settings, **settings})
        if cleaned != connection.settings:
            changes["settings"] = [sorted(connection.settings), sorted(cleaned)]
            connection.settings = cleaned
    if credentials is not None:
        merged = {**connection.credentials, **credentials}
        merged = {key: value for key, value in merged.items() if value not in (None, "")}
        if merged != connection.credentials:
            # Only the names: audit entries never hold secrets.
            changes["credentials"] = [sorted(connection.credentials), sorted(merged)]
            connection.credentials = merged
    if changes:
        connection.save()
        audit_record(
            organization=connection.organization,
            action="integration_connection.updated",
            actor=actor,
            target=connection,
            request=request,
            changes=changes,
        )
    return connection


def connection_mapping_set(
    *, connection: IntegrationConnection, mapping: dict[str, str], defaults: dict[str, Any], actor=None, request=None
) -> IntegrationConnection:
    if connection.provider != IntegrationProvider.WEBHOOK:
        raise ServiceError("Only generic webhooks have a field mapping.")
    return connection_update(
        connection=connection,
        settings={"mapping": mapping, "defaults": defaults},
        actor=actor,
        request=request,
    )


def connection_webhook_secret_set(*, connection: IntegrationConnection, enabled: bool, actor=None, request=None) -> str:
    """Turn HMAC signing on with a fresh secret (returned, to show once) or off (returns "")."""
    secret = connection_secret_generate() if enabled else ""
    connection_update(connection=connection, credentials={"hmac_secret": secret}, actor=actor, request=request)
    return secret


def connection_disconnect(*, connection: IntegrationConnection, actor=None, request=None) -> IntegrationConnection:
    """Stop receiving: the connection's URLs answer 404 and syncs skip it. Credentials are forgotten."""
    previous = connection.status
    connection.status = ConnectionStatus.DISCONNECTED
    connection.credentials = {}
    connection.save(update_fields=["status", "credentials", "updated_at"])
    audit_record(
        organization=connection.organization,
        action="integration_connection.disconnected",
        actor=actor,
        target=connection,
        request=request,
        changes={"status": [previous, connection.status]},
    )
    return connection


def connection_reconnect(*, connection: IntegrationConnection, actor=None, request=None) -> IntegrationConnection:
    previous = connection.status
    IntegrationConnection.objects.unscoped().filter(pk=connection.pk).update(
        status=ConnectionStatus.CONNECTED, consecutive_errors=0, updated_at=timezone.now()
    )
    connections_forget()  # an UPDATE sends no post_save
    connection.refresh_from_db()
    audit_record(
        organization=connection.organization,
        action="integration_connection.reconnected",
        actor=actor,
        target=connection,
        request=request,
        changes={"status": [previous, connection.status]},
    )
    return connection


# Health -----------------------------------------------------------------------------------------------------------


def connection_record_success(*, connection: IntegrationConnection) -> None:
    """Something worked: the error count restarts and an ``error`` connection is healthy again."""
    now = timezone.now()
    if (
        connection.status == ConnectionStatus.CONNECTED
        and not connection.consecutive_errors
        and connection.last_success_at is not None
        and now - connection.last_success_at < SUCCESS_WRITE_INTERVAL
    ):
        return  # healthy and recorded a moment ago (as this copy was read): not even a statement
    # A busy source succeeds many times a second: a healthy row is rewritten at most once a second.
    needs_write = (
        Q(last_success_at__isnull=True)
        | Q(last_success_at__lt=now - SUCCESS_WRITE_INTERVAL)
        | Q(consecutive_errors__gt=0)
        | Q(status=ConnectionStatus.ERROR)
    )
    updated = (
        IntegrationConnection.objects.unscoped()
        .filter(needs_write, pk=connection.pk)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .update(last_success_at=now, consecutive_errors=0, status=ConnectionStatus.CONNECTED)
    )
    if updated:
        connection.last_success_at, connection.consecutive_errors = now, 0
        connection.status = ConnectionStatus.CONNECTED


def connection_record_failure(
    *, connection: IntegrationConnection, error: str, auth_error: bool = False
) -> IntegrationConnection:
    """Count a failure; the one that crosses the threshold (or any auth error) turns it to error and emails."""
    now = timezone.now()
    with transaction.atomic():
        # Locked: failures recorded at once by parallel requests each count, and only one of them emails.
        locked = IntegrationConnection.objects.unscoped().select_for_update().get(pk=connection.pk)
        locked.consecutive_errors += 1
        locked.last_error = (error or "")[:CONNECTION_ERROR_MAX_CHARS]
        locked.last_error_at = now
        turned_to_error = locked.status == ConnectionStatus.CONNECTED and (
            auth_error or locked.consecutive_errors >= CONNECTION_ERROR_THRESHOLD
        )
        if turned_to_error:
            locked.status = ConnectionStatus.ERROR
        locked.save(update_fields=["consecutive_errors", "last_error", "last_error_at", "status"])
        if turned_to_error:
            logger.warning("integration connection %s turned to error: %s", locked.pk, locked.last_error)
            transaction.on_commit(lambda: _notify_error_later(locked.pk))
    for name in ("consecutive_errors", "last_error", "last_error_at", "status"):
        setattr(connection, name, getattr(locked, name))
    return locked


def _notify_error_later(connection_id: int) -> None:
    from ..tasks import notify_connection_error

    notify_connection_error.delay(connection_id)


def connection_error_email_send(*, connection_id: int) -> int:
    """Tell the organization's owners a connection needs attention. Returns how many emails were sent."""
    connection = (
        IntegrationConnection.objects.unscoped().select_related("organization").filter(pk=connection_id).first()
    )
    if connection is None or connection.status != ConnectionStatus.ERROR:
        return 0  # deleted or fixed before the email went out
    try:
        page = settings.SITE_URL + reverse("integrations:list")
    except NoReverseMatch:
        page = settings.SITE_URL
    from messaging.services.notifications import integration_error_notify

    # The owners are told as they prefer (the bell, SMS, WhatsApp; this email unless they turned it off).
    recipients = integration_error_notify(connection=connection, url=page)
    if not recipients:
        return 0
    send_mail(
        subject=f"Integration needs attention: {connection}",
        message=(
            f"LeadFlow's connection “{connection.name}” ({connection.get_provider_display()}) in "
            f"{connection.organization.name} keeps failing.\n\n"
            f"Last error: {connection.last_error}\n"
            f"Failures in a row: {connection.consecutive_errors}\n\n"
            "Leads that arrive are still stored and can be replayed once it works again. Check or reconnect it "
            f"here:\n{page}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
