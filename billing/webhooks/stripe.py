"""Stripe events (as dj-stripe verified and stored them), applied.

checkout.session.completed: a plan checkout (subscription mode) or a wallet top-up (payment mode, paid).
customer.subscription.created/updated/deleted: status, period, plan and cancel-at-period-end mirrored.
invoice.paid / invoice.payment_failed: invoiced and restored / past due. payment_intent.succeeded / payment_failed:
an auto-recharge credited / failed. charge.refunded: refunds mirrored for revenue figures.
"""

from __future__ import annotations

import logging

import stripe as stripe_sdk
from django.conf import settings
from django.utils import timezone

from ..checkout import plan_checkout_complete
from ..events import unix_time
from ..lifecycle import subscription_mirror, subscription_payment_failed, subscription_payment_succeeded
from ..models import BillingProvider, PlanCheckout, ProviderPlan, Refund, Subscription, SubscriptionStatus, WalletTopUp
from ..money import from_minor
from ..topups import top_up_failed, top_up_paid
from . import Outcome, applied, ignored

logger = logging.getLogger(__name__)

STRIPE = BillingProvider.STRIPE
STATUS_FOR = {
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.CANCELLED,
    "incomplete_expired": SubscriptionStatus.CANCELLED,
}


def _id(value) -> str:
    """Stripe fields hold an id or, when expanded, the object."""
    if isinstance(value, dict):
        return value.get("id", "")
    return value or ""


def handle(event) -> Outcome:
    kind = event.event_type
    obj = (event.payload.get("data") or {}).get("object") or {}
    if kind == "checkout.session.completed":
        return _checkout_completed(obj, event)
    if kind.startswith("customer.subscription."):
        return _subscription_changed(kind, obj, event)
    if kind == "invoice.paid":
        return _invoice_paid(obj, event)
    if kind == "invoice.payment_failed":
        return _invoice_failed(obj, event)
    if kind == "payment_intent.succeeded":
        return _intent_succeeded(obj)
    if kind == "payment_intent.payment_failed":
        return _intent_failed(obj)
    if kind == "charge.refunded":
        return _charge_refunded(obj)
    return ignored(f"{kind} needs nothing from LeadFlow")


def _locked_subscription(remote_id: str):
    return (
        Subscription.objects.unscoped()
        .select_for_update()
        .select_related("plan", "organization")
        .filter(provider=STRIPE, provider_subscription_id=remote_id)
        .first()
    )


def _periods(remote: dict) -> tuple:
    """Since API version 2025-03-31 the period lives on the items; before, on the subscription."""
    items = (remote.get("items") or {}).get("data") or []
    first = items[0] if items else {}
    start = first.get("current_period_start") or remote.get("current_period_start")
    end = first.get("current_period_end") or remote.get("current_period_end")
    return unix_time(start), unix_time(end)


def _plan_of(remote: dict):
    items = (remote.get("items") or {}).get("data") or []
    price_id = _id((items[0] if items else {}).get("price"))
    mapped = (
        ProviderPlan.objects.filter(provider=STRIPE, provider_plan_id=price_id).select_related("price__plan").first()
    )
    return mapped.price.plan if mapped else None


def _checkout_completed(session: dict, event) -> Outcome:
    metadata = session.get("metadata") or {}
    if session.get("mode") == "payment":
        if not metadata.get("top_up_id"):
            return ignored("a payment checkout that is not a wallet top-up")
        if session.get("payment_status") != "paid":
            return ignored(f"top-up checkout {session['id']} is {session.get('payment_status')}")
        intent_id = _id(session.get("payment_intent"))
        customer_id, method_id, label = _id(session.get("customer")), "", ""
        if intent_id:
            method_id, label, customer_id = _saved_method(intent_id, customer_id)
        top_up = top_up_paid(
            provider=STRIPE,
            reference=session["id"],
            top_up_id=metadata.get("top_up_id"),
            payment_reference=intent_id or session["id"],
            amount_minor=session["amount_total"],
            currency=session["currency"].upper(),
            customer_id=customer_id,
            method_id=method_id,
            method_label=label,
        )
        if top_up is None:
            return ignored("a top-up LeadFlow does not know")
        return applied(f"top-up {top_up.pk}: {top_up.status}", top_up.organization_id)
    if session.get("mode") != "subscription":
        return ignored(f"{session.get('mode')} checkouts need nothing")
    checkout = (
        PlanCheckout.objects.unscoped()
        .filter(token=metadata.get("checkout_token") or session.get("client_reference_id") or "", provider=STRIPE)
        .first()
    )
    if checkout is None:
        return ignored(f"checkout {session['id']} was not started by LeadFlow")
    subscription = plan_checkout_complete(
        checkout=checkout,
        occurred_at=event.occurred_at,
        provider_subscription_id=_id(session.get("subscription")),
        provider_customer_id=_id(session.get("customer")),
    )
    return applied(f"checkout completed: {subscription.status}", subscription.organization_id)


def _saved_method(intent_id: str, customer_id: str) -> tuple[str, str, str]:
    """The card a top-up's PaymentIntent used (saved for off-session use), read from Stripe."""
    intent = stripe_sdk.PaymentIntent.retrieve(
        intent_id, api_key=settings.STRIPE_SECRET_KEY, expand=["payment_method"]
    ).to_dict()
    method = intent.get("payment_method") or {}
    card = method.get("card") if isinstance(method, dict) else None
    label = f"{card['brand']} •••• {card['last4']}" if card else ""
    return _id(method), label, _id(intent.get("customer")) or customer_id


def _subscription_for(remote_id: str, *, metadata: dict, customer_id: str, occurred_at, remote: dict | None = None):
    """Our (locked) subscription for a Stripe subscription id. Stripe does not order its events: a subscription or
    invoice event may arrive before ``checkout.session.completed``; the checkout token LeadFlow put in the
    subscription's metadata then completes the checkout first."""
    subscription = _locked_subscription(remote_id)
    if subscription is not None or not remote_id:
        return subscription
    checkout = (
        PlanCheckout.objects.unscoped()
        .filter(token=(metadata or {}).get("checkout_token", ""), provider=STRIPE)
        .first()
    )
    if checkout is None:
        return None
    period_start, period_end = _periods(remote or {})
    plan_checkout_complete(
        checkout=checkout,
        occurred_at=occurred_at,
        provider_subscription_id=remote_id,
        provider_customer_id=customer_id,
        period_start=period_start,
        period_end=period_end,
    )
    return _locked_subscription(remote_id)


def _subscription_changed(kind: str, remote: dict, event) -> Outcome:
    if remote.get("status") == "active":
        subscription = _subscription_for(
            remote.get("id", ""),
            metadata=remote.get("metadata") or {},
            customer_id=_id(remote.get("customer")),
            occurred_at=event.occurred_at,
            remote=remote,
        )
    else:
        subscription = _locked_subscription(remote.get("id", ""))
    if subscription is None:
        return ignored(f"{kind} for {remote.get('id')}, a subscription LeadFlow does not know")
    period_start, period_end = _periods(remote)
    status = (
        SubscriptionStatus.CANCELLED
        if kind == "customer.subscription.deleted"
        else STATUS_FOR.get(remote.get("status"))
    )
    changed = subscription_mirror(
        subscription=subscription,
        occurred_at=event.occurred_at,
        reason=kind,
        status=status,
        plan=_plan_of(remote),
        period_start=period_start,
        period_end=period_end,
        cancel_at_period_end=bool(remote.get("cancel_at_period_end")),
    )
    if not changed:
        return ignored(f"{kind} is older than the state applied", subscription.organization_id)
    return applied(f"{kind}: {subscription.status}", subscription.organization_id)


def _invoice_subscription_id(invoice: dict) -> str:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return _id(details.get("subscription")) or _id(invoice.get("subscription"))


def _invoice_paid(invoice: dict, event) -> Outcome:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription = _subscription_for(
        _invoice_subscription_id(invoice),
        metadata=details.get("metadata") or invoice.get("subscription_details", {}).get("metadata") or {},
        customer_id=_id(invoice.get("customer")),
        occurred_at=event.occurred_at,
    )
    if subscription is None:
        return ignored(f"invoice {invoice.get('id')} is not for a LeadFlow subscription")
    if not invoice.get("amount_paid"):
        return ignored(f"invoice {invoice['id']} paid nothing", subscription.organization_id)
    lines = (invoice.get("lines") or {}).get("data") or []
    period = (lines[0] if lines else {}).get("period") or {}
    ours = subscription_payment_succeeded(
        subscription=subscription,
        gross=from_minor(invoice["amount_paid"], invoice["currency"].upper()),
        provider_reference=invoice["id"],
        occurred_at=event.occurred_at,
        period_start=unix_time(period.get("start")),
        period_end=unix_time(period.get("end")),
    )
    return applied(f"invoice {invoice['id']} mirrored as {ours.number}", subscription.organization_id)


def _invoice_failed(invoice: dict, event) -> Outcome:
    subscription = _locked_subscription(_invoice_subscription_id(invoice))
    if subscription is None:
        return ignored(f"invoice {invoice.get('id')} is not for a LeadFlow subscription")
    if subscription_payment_failed(
        subscription=subscription, occurred_at=event.occurred_at, reason="invoice.payment_failed"
    ):
        return applied("payment failed: past due", subscription.organization_id)
    return ignored(f"payment failed while {subscription.status}", subscription.organization_id)


def _intent_succeeded(intent: dict) -> Outcome:
    metadata = intent.get("metadata") or {}
    if not metadata.get("top_up_id"):
        return ignored("a payment that is not a wallet top-up")
    top_up = top_up_paid(
        provider=STRIPE,
        reference=intent["id"],
        top_up_id=metadata["top_up_id"],
        payment_reference=intent["id"],
        amount_minor=intent.get("amount_received") or intent["amount"],
        currency=intent["currency"].upper(),
    )
    if top_up is None:
        return ignored("a top-up LeadFlow does not know")
    return applied(f"top-up {top_up.pk}: {top_up.status}", top_up.organization_id)


def _intent_failed(intent: dict) -> Outcome:
    metadata = intent.get("metadata") or {}
    top_up_id = str(metadata.get("top_up_id", ""))
    top_up = (
        WalletTopUp.objects.unscoped().filter(pk=int(top_up_id), provider=STRIPE).first()
        if top_up_id.isdigit()
        else None
    )
    if top_up is None:
        return ignored("a failed payment that is not a wallet top-up")
    error = (intent.get("last_payment_error") or {}).get("message") or "declined"
    top_up_failed(top_up_id=top_up.pk, error=f"Stripe: {error}")
    return applied(f"top-up {top_up.pk} failed", top_up.organization_id)


def _charge_refunded(charge: dict) -> Outcome:
    from ..models import Invoice

    invoice_id, intent_id = _id(charge.get("invoice")), _id(charge.get("payment_intent"))
    organization_id = None
    if invoice_id:
        found = Invoice.objects.unscoped().filter(provider=STRIPE, provider_reference=invoice_id).first()
        organization_id = found.organization_id if found else None
    if organization_id is None and intent_id:
        found = WalletTopUp.objects.unscoped().filter(provider=STRIPE, payment_reference=intent_id).first()
        organization_id = found.organization_id if found else None
    if organization_id is None:
        return ignored(f"refund of charge {charge.get('id')}, which LeadFlow did not invoice or credit")
    currency = charge["currency"].upper()
    refunds = (charge.get("refunds") or {}).get("data") or []
    if not refunds:
        # Refunds are not expanded on charges by default: one row per charge holding its refunded total.
        refunds = [{"id": charge["id"], "amount": charge["amount_refunded"], "created": charge.get("created")}]
    for refund in refunds:
        Refund.objects.unscoped().update_or_create(
            provider=STRIPE,
            provider_refund_id=refund["id"],
            defaults={
                "organization_id": organization_id,
                "provider_payment_id": intent_id or charge["id"],
                "amount": from_minor(refund["amount"], currency),
                "currency": currency,
                "refunded_at": unix_time(refund.get("created")) or timezone.now(),
            },
        )
    return applied(f"{len(refunds)} refund(s) recorded", organization_id)
