"""Reads of the stages sent to Meta, through the scoped manager."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import ConversionEvent, IntegrationConnection


def connection_conversion_events(*, connection: IntegrationConnection) -> QuerySet[ConversionEvent]:
    return ConversionEvent.objects.filter(connection=connection).select_related("lead").order_by("-created_at", "-id")
