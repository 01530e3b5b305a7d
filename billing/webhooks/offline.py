"""The offline provider's confirmations: its checkout page's "Pay" for a plan or a wallet top-up."""

from __future__ import annotations

from ..checkout import plan_checkout_complete
from ..models import BillingProvider, PlanCheckout
from ..money import to_minor
from ..topups import top_up_paid
from . import Outcome, applied, ignored


def handle(event) -> Outcome:
    payload = event.payload
    if event.event_type == "checkout.completed":
        checkout = PlanCheckout.objects.unscoped().filter(token=payload["checkout"]).first()
        if checkout is None:
            return ignored("no such checkout")
        subscription = plan_checkout_complete(checkout=checkout, occurred_at=event.occurred_at)
        return applied(f"checkout {checkout.pk} completed", subscription.organization_id)
    if event.event_type == "top_up.paid":
        top_up = top_up_paid(
            provider=BillingProvider.OFFLINE,
            reference=payload["reference"],
            payment_reference=payload["reference"],
            amount_minor=to_minor(payload["amount"], payload["currency"]),
            currency=payload["currency"],
        )
        if top_up is None:
            return ignored("no such top-up")
        return applied(f"top-up {top_up.pk} paid", top_up.organization_id)
    return ignored(f"{event.event_type} is not an offline event")
