"""Stripe webhooks arrive at dj-stripe's endpoint (``/stripe/webhook/<uuid>/``), which verifies the
``Stripe-Signature`` (HMAC-SHA256 of ``t.body`` with the endpoint's secret, 300 s tolerance), stores the event once
and syncs its objects. These receivers hand the events LeadFlow acts on to ``billing.events``: recorded once more
under our own unique key, applied in a task."""

from __future__ import annotations

from djstripe.event_handlers import djstripe_receiver

from .events import billing_event_record
from .models import BillingProvider

HANDLED = [
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
]


@djstripe_receiver(HANDLED)
def record_stripe_event(sender, event, **kwargs):
    billing_event_record(
        provider=BillingProvider.STRIPE,
        event_id=event.id,
        event_type=event.type,
        payload={"id": event.id, "type": event.type, "created": int(event.created.timestamp()), "data": event.data},
        occurred_at=event.created,
    )
