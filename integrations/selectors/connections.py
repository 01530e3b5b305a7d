"""Reads of inbound connections, always through the scoped manager (the page middleware or the API sets it)."""

from __future__ import annotations

from django.db.models import QuerySet

from leadflow.caching import ProcessCache
from leads.models import InboundSubmission

from ..constants import ConnectionStatus, IntegrationProvider
from ..models import IntegrationConnection


def integration_connections() -> QuerySet[IntegrationConnection]:
    return IntegrationConnection.objects.all().order_by("provider", "name", "id")


def connection_submissions(*, connection: IntegrationConnection) -> QuerySet[InboundSubmission]:
    """Raw payloads a connection received, newest first. ``source`` narrows to an index before the JSON filter."""
    return (
        InboundSubmission.objects.filter(source=connection.provider, context__connection_id=connection.pk)
        .select_related("lead")
        .order_by("-received_at", "-id")
    )


def connection_last_payload(*, connection: IntegrationConnection) -> InboundSubmission | None:
    """The last delivery that passed authentication: what the mapping editor previews."""
    return (
        connection_submissions(connection=connection)
        .select_related(None)
        .exclude(context__contains={"signature_valid": False})  # a missing key must not exclude (SQL NULL)
        .only("id", "raw_body", "content_type", "received_at", "status", "context")
    ).first()


# Every Facebook notification and every lead fetch reads its page's connection (and decrypts its token). A process
# keeps what it read for a few seconds; a save or delete is seen at once by the process that made it
# (``integrations.signals``) and within that time by the others. Receivers that find no connection are not
# remembered: a page connected a moment ago is found by every process at once.
_connections_cache: ProcessCache[list[IntegrationConnection]] = ProcessCache(seconds=10)


def facebook_connections_for_page(page_id: str) -> list[IntegrationConnection]:
    """The receiving connections of a Facebook page, of active organizations (any organization: the webhook is
    one URL for every customer)."""

    def load() -> list[IntegrationConnection] | None:
        found = list(
            IntegrationConnection.objects.unscoped()
            .select_related("organization")
            .filter(provider=IntegrationProvider.FACEBOOK, external_account_id=page_id, organization__is_active=True)
            .exclude(status=ConnectionStatus.DISCONNECTED)
            .order_by("id")
        )
        return found or None

    return _connections_cache.get(("facebook-page", page_id), load) or []


def connection_by_id(connection_id, *, organization_id: int) -> IntegrationConnection | None:
    """A connection of ``organization_id`` by id, as workers read it for its credentials."""

    def load() -> list[IntegrationConnection] | None:
        found = IntegrationConnection.objects.unscoped().filter(pk=connection_id, organization_id=organization_id)
        return list(found) or None

    found = _connections_cache.get(("id", organization_id, connection_id), load)
    return found[0] if found else None


def conversions_connections(*, organization_id: int) -> list[IntegrationConnection]:
    """The organization's Facebook connections that send lead stages to Meta (read for every batch of new leads;
    an opt-in reaches the other processes within a few seconds)."""
    from ..services.conversions import connection_conversions_enabled

    def load() -> list[IntegrationConnection]:
        found = (
            IntegrationConnection.objects.unscoped()
            .filter(
                organization_id=organization_id,
                provider=IntegrationProvider.FACEBOOK,
                settings__conversions_enabled=True,
            )
            .exclude(status=ConnectionStatus.DISCONNECTED)
        )
        return [connection for connection in found if connection_conversions_enabled(connection)]

    return _connections_cache.get(("conversions", organization_id), load)


def connections_forget() -> None:
    _connections_cache.forget()
