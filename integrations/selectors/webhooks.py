"""Reading outbound webhook endpoints and deliveries (scoped to the organization in context)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from ..constants import WebhookEndpointPurpose
from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def webhook_endpoints(*, purpose: str = WebhookEndpointPurpose.SUBSCRIPTION) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(purpose=purpose)


def webhook_endpoints_subscribed(*, organization, event_type: str) -> QuerySet[WebhookEndpoint]:
    """The organization's active subscriptions to ``event_type``."""
    return WebhookEndpoint.objects.filter(
        organization=organization,
        purpose=WebhookEndpointPurpose.SUBSCRIPTION,
        is_active=True,
        events__contains=[event_type],
    )


def webhook_deliveries(
    *, endpoint: WebhookEndpoint | None = None, with_attempts: bool = True, queryset: QuerySet | None = None
) -> QuerySet[WebhookDelivery]:
    """Newest first, with their message and endpoint (and attempts in one more query) for lists."""
    queryset = (queryset if queryset is not None else WebhookDelivery.objects.all()).select_related(
        "message", "endpoint"
    )
    if endpoint is not None:
        queryset = queryset.filter(endpoint=endpoint)
    if with_attempts:
        queryset = queryset.prefetch_related(Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number")))
    return queryset.order_by("-created_at", "-id")
