"""Buyer webhook deliveries are metered when they succeed (the integrations machinery sends them)."""

from __future__ import annotations

from django.conf import settings

from integrations.constants import WebhookEndpointPurpose
from integrations.models import WebhookAttempt, WebhookDelivery
from integrations.services.webhooks import webhook_delivery_succeeded
from messaging.constants import Channel
from messaging.services.metering import usage_record

from .models import SaleDelivery

BUYER_PURPOSES = (WebhookEndpointPurpose.BUYER_WEBHOOK, WebhookEndpointPurpose.BUYER_CRM)


@webhook_delivery_succeeded(*BUYER_PURPOSES)
def meter_buyer_webhook(delivery: WebhookDelivery, attempt: WebhookAttempt) -> None:
    """One usage record per buyer webhook delivered, in the transaction that records its successful attempt."""
    sale = (
        SaleDelivery.objects.unscoped()
        .filter(webhook_delivery_id=delivery.pk)
        .values("sale_id", "sale__buyer_id", "sale__lead_id", "sale__buyer__name")
        .first()
    )
    context = {"webhook_delivery_id": delivery.pk, "endpoint_id": delivery.endpoint_id}
    description = f"Webhook to {delivery.endpoint.url}"[:255]
    if sale:
        context.update(buyer_id=sale["sale__buyer_id"], sale_id=sale["sale_id"], lead_id=sale["sale__lead_id"])
        description = f"Lead {sale['sale__lead_id']} to {sale['sale__buyer__name']} (webhook)"
    usage_record(
        organization_id=delivery.organization_id,
        channel=Channel.WEBHOOK,
        provider="webhook",
        source_key=f"webhook-delivery:{delivery.pk}",
        cost=settings.USAGE_COSTS["webhook"],
        currency=settings.USAGE_COST_CURRENCY,
        cost_is_estimate=True,
        provider_message_id=delivery.message.message_id,
        description=description,
        context=context,
    )
