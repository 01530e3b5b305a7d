"""Razorpay events (``{"entity": "event", "event": …, "payload": {…}, "created_at": …}``), applied.

Subscriptions: authenticated (mandate given, ids recorded), activated/charged/resumed (active; charged also
invoices the payment), pending and halted (past due), cancelled and completed (cancelled), updated (the plan,
e.g. a downgrade at the cycle's end). Payments: captured / order.paid / payment_link.paid credit a top-up;
payment.failed fails one. Refunds are mirrored for revenue figures.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from ..checkout import plan_checkout_complete
from ..events import unix_time
from ..lifecycle import subscription_mirror, subscription_payment_failed, subscription_payment_succeeded
from ..models import BillingProvider, PlanCheckout, ProviderPlan, Refund, Subscription, SubscriptionStatus, WalletTopUp
from ..money import from_minor
from ..topups import top_up_failed, top_up_paid
from . import Outcome, applied, ignored

logger = logging.getLogger(__name__)

RAZORPAY = BillingProvider.RAZORPAY
STATUS_FOR = {
    "subscription.activated": SubscriptionStatus.ACTIVE,
    "subscription.charged": SubscriptionStatus.ACTIVE,
    "subscription.resumed": SubscriptionStatus.ACTIVE,
    "subscription.pending": SubscriptionStatus.PAST_DUE,
    "subscription.halted": SubscriptionStatus.PAST_DUE,
    "subscription.cancelled": SubscriptionStatus.CANCELLED,
    "subscription.completed": SubscriptionStatus.CANCELLED,
}


def _entity(payload: dict, name: str) -> dict:
    return ((payload.get("payload") or {}).get(name) or {}).get("entity") or {}


def _notes(entity: dict) -> dict:
    notes = entity.get("notes")
    return notes if isinstance(notes, dict) else {}  # Razorpay sends [] for "no notes"


def handle(event) -> Outcome:
    payload = event.payload
    kind = payload.get("event", event.event_type)
    if kind.startswith("subscription."):
        return _subscription_event(kind, payload, event)
    if kind in ("payment.captured", "order.paid", "payment_link.paid"):
        return _top_up_paid(kind, payload)
    if kind == "payment.failed":
        return _payment_failed(payload, event)
    if kind.startswith("refund."):
        return _refund(payload)
    return ignored(f"{kind} needs nothing from LeadFlow")


def _plan_for(plan_id: str):
    mapped = (
        ProviderPlan.objects.filter(provider=RAZORPAY, provider_plan_id=plan_id).select_related("price__plan").first()
    )
    return mapped.price.plan if mapped else None


def _subscription_event(kind: str, payload: dict, event) -> Outcome:
    remote = _entity(payload, "subscription")
    remote_id = remote.get("id", "")
    occurred_at = event.occurred_at
    subscription = (
        Subscription.objects.unscoped()
        .select_for_update()
        .select_related("plan", "organization")
        .filter(provider=RAZORPAY, provider_subscription_id=remote_id)
        .first()
    )
    if subscription is None:
        token = _notes(remote).get("checkout_token", "")
        checkout = PlanCheckout.objects.unscoped().filter(token=token, provider=RAZORPAY).first() if token else None
        if checkout is None:
            return ignored(f"{kind} for {remote_id}, a subscription LeadFlow does not know")
        if kind not in ("subscription.activated", "subscription.charged"):
            # Authenticated only means the mandate is in place; the first charge completes the checkout.
            return ignored(f"{kind} before the checkout completed")
        plan_checkout_complete(
            checkout=checkout,
            occurred_at=occurred_at,
            provider_subscription_id=remote_id,
            provider_customer_id=remote.get("customer_id") or "",
            period_start=unix_time(remote.get("current_start")),
            period_end=unix_time(remote.get("current_end")),
        )
        subscription = (
            Subscription.objects.unscoped()
            .select_for_update()
            .select_related("plan", "organization")
            .get(provider=RAZORPAY, provider_subscription_id=remote_id)
        )
    if remote.get("customer_id") and not subscription.provider_customer_id:
        subscription.provider_customer_id = remote["customer_id"]
        subscription.save(update_fields=["provider_customer_id", "updated_at"])
    organization_id = subscription.organization_id
    if kind == "subscription.charged":
        payment = _entity(payload, "payment")
        invoice = subscription_payment_succeeded(
            subscription=subscription,
            gross=from_minor(payment["amount"], payment.get("currency", subscription.currency)),
            provider_reference=payment["id"],
            occurred_at=occurred_at,
            period_start=unix_time(remote.get("current_start")),
            period_end=unix_time(remote.get("current_end")),
        )
        subscription_mirror(
            subscription=subscription,
            occurred_at=occurred_at,
            reason=kind,
            plan=_plan_for(remote.get("plan_id", "")),
            period_start=unix_time(remote.get("current_start")),
            period_end=unix_time(remote.get("current_end")),
        )
        return applied(f"payment {payment['id']} invoiced as {invoice.number}", organization_id)
    if kind == "subscription.authenticated":
        return applied("mandate authorized; waiting for the first charge", organization_id)
    changed = subscription_mirror(
        subscription=subscription,
        occurred_at=occurred_at,
        reason=kind,
        status=STATUS_FOR.get(kind),
        plan=_plan_for(remote.get("plan_id", "")),
        period_start=unix_time(remote.get("current_start")),
        period_end=unix_time(remote.get("current_end")),
    )
    if not changed:
        return ignored(f"{kind} is older than the state applied", organization_id)
    return applied(f"{kind}: {subscription.status}", organization_id)


def _top_up_paid(kind: str, payload: dict) -> Outcome:
    payment = _entity(payload, "payment")
    notes = _notes(payment) or _notes(_entity(payload, "order")) or _notes(_entity(payload, "payment_link"))
    reference = payment.get("order_id") or ""
    if kind == "payment_link.paid":
        reference = _entity(payload, "payment_link").get("id", "")
    if not payment.get("id") or not (reference or notes.get("top_up_id")):
        return ignored(f"{kind} is not a wallet top-up")
    if kind == "payment.captured" and payment.get("status") not in (None, "captured"):
        return ignored(f"payment {payment['id']} is {payment.get('status')}")
    top_up = top_up_paid(
        provider=RAZORPAY,
        reference=reference,
        top_up_id=notes.get("top_up_id"),
        payment_reference=payment["id"],
        amount_minor=payment["amount"],
        currency=payment.get("currency", "INR"),
        customer_id=payment.get("customer_id") or "",
        method_id=payment.get("token_id") or "",
        method_label=_card_label(payment),
    )
    if top_up is None:
        return ignored(f"payment {payment['id']} names no top-up LeadFlow knows")
    return applied(f"top-up {top_up.pk}: {top_up.status}", top_up.organization_id)


def _card_label(payment: dict) -> str:
    card = payment.get("card") or {}
    if card.get("last4"):
        return f"{card.get('network', 'card')} •••• {card['last4']}"
    return payment.get("method", "")


def _payment_failed(payload: dict, event) -> Outcome:
    payment = _entity(payload, "payment")
    notes = _notes(payment)
    top_up = None
    if notes.get("top_up_id") or payment.get("order_id"):
        top_up = (
            WalletTopUp.objects.unscoped().filter(pk=notes["top_up_id"], provider=RAZORPAY).first()
            if str(notes.get("top_up_id", "")).isdigit()
            else WalletTopUp.objects.unscoped()
            .filter(provider=RAZORPAY, provider_reference=payment.get("order_id"))
            .first()
        )
    if top_up is not None:
        reason = payment.get("error_description") or payment.get("error_code") or "declined"
        top_up_failed(top_up_id=top_up.pk, error=f"Razorpay: {reason}")
        return applied(f"top-up {top_up.pk} failed", top_up.organization_id)
    organization_id = notes.get("organization_id")
    if str(organization_id or "").isdigit():
        subscription = (
            Subscription.objects.unscoped()
            .select_for_update()
            .select_related("organization")
            .filter(organization_id=int(organization_id), provider=RAZORPAY)
            .first()
        )
        if subscription and subscription_payment_failed(
            subscription=subscription, occurred_at=event.occurred_at, reason="payment failed"
        ):
            return applied("subscription payment failed: past due", subscription.organization_id)
    return ignored("payment failure with nothing to update")


def _refund(payload: dict) -> Outcome:
    refund = _entity(payload, "refund")
    if not refund.get("id") or payload.get("event") not in ("refund.processed", "refund.created"):
        return ignored("refund event with nothing to record")
    payment_id = refund.get("payment_id", "")
    organization_id = _organization_of_payment(payment_id)
    if organization_id is None:
        return ignored(f"refund of {payment_id}, a payment LeadFlow did not invoice or credit")
    currency = refund.get("currency", "INR")
    Refund.objects.unscoped().get_or_create(
        provider=RAZORPAY,
        provider_refund_id=refund["id"],
        defaults={
            "organization_id": organization_id,
            "provider_payment_id": payment_id,
            "amount": from_minor(refund["amount"], currency),
            "currency": currency,
            "refunded_at": unix_time(refund.get("created_at"))
            or unix_time(payload.get("created_at"))
            or timezone.now(),
        },
    )
    return applied(f"refund {refund['id']} recorded", organization_id)


def _organization_of_payment(payment_id: str) -> int | None:
    from ..models import Invoice

    if not payment_id:
        return None
    invoice = Invoice.objects.unscoped().filter(provider=RAZORPAY, provider_reference=payment_id).first()
    if invoice:
        return invoice.organization_id
    top_up = WalletTopUp.objects.unscoped().filter(provider=RAZORPAY, payment_reference=payment_id).first()
    return top_up.organization_id if top_up else None
