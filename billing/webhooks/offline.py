"""The offline provider's confirmations: its checkout page's "Pay" for a plan or a wallet top-up."""

from __future__ import annotations

from ..checkout import plan_checkout_complete
from ..lifecycle import period_end_after, subscription_payment_succeeded
from ..models import BillingProvider, PlanCheckout, Subscription
from ..money import charge_amount, to_minor
from ..topups import top_up_paid
from . import Outcome, applied, ignored


def handle(event) -> Outcome:
    payload = event.payload
    if event.event_type == "checkout.completed":
        checkout = PlanCheckout.objects.unscoped().filter(token=payload["checkout"]).first()
        if checkout is None:
            return ignored("no such checkout")
        start = event.occurred_at
        end = period_end_after(start, checkout.interval)
        subscription = plan_checkout_complete(checkout=checkout, occurred_at=start, period_start=start, period_end=end)
        # The offline "payment" is invoiced like a provider's first charge (tax included in what was "paid").
        subscription = (
            Subscription.objects.unscoped()
            .select_for_update()
            .select_related("plan", "organization")
            .get(pk=subscription.pk)
        )
        price = checkout.plan.price_for(checkout.currency, checkout.interval)
        invoice = subscription_payment_succeeded(
            subscription=subscription,
            gross=charge_amount(organization=subscription.organization, net=price.amount, currency=checkout.currency),
            provider_reference=f"checkout:{checkout.token}",
            occurred_at=start,
            period_start=start,
            period_end=end,
        )
        return applied(f"checkout {checkout.pk} completed, invoiced as {invoice.number}", subscription.organization_id)
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
