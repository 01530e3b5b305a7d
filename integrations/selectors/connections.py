"""Reads of inbound connections, always through the scoped manager (the page middleware or the API sets it)."""

from __future__ import annotations

from django.db.models import QuerySet

from leads.models import InboundSubmission

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
