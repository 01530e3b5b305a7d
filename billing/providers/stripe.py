"""Stripe (the ``stripe`` SDK; dj-stripe receives and stores its webhooks): Checkout for subscriptions and top-ups,
the customer portal, plan changes, and off-session PaymentIntents on a saved card for auto-recharge.
``STRIPE_API_BASE`` is the API host (``stripe.api_base``, set at start-up in ``billing.apps``)."""

from __future__ import annotations

import logging
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from ..charging import ChargeResult, ChargeStatus
from ..models import BillingInterval, BillingProvider, ProviderPlan
from ..money import charge_amount, to_minor
from . import CheckoutStart, ProviderError
from .razorpay import _Prospect, _recharge_failed, _remember_reference

logger = logging.getLogger(__name__)

RECURRING = {BillingInterval.MONTHLY: "month", BillingInterval.YEARLY: "year"}


def _key() -> str:
    return settings.STRIPE_SECRET_KEY


def _call(what: str, function, *args, **kwargs):
    try:
        return function(*args, api_key=_key(), **kwargs)
    except stripe.CardError:
        raise
    except stripe.StripeError as error:
        logger.warning("stripe %s failed: %s", what, error)
        message = getattr(error, "user_message", None) or str(error) or "no answer"
        raise ProviderError(f"Stripe could not {what}: {message}") from error


class StripeProvider:
    name = BillingProvider.STRIPE

    def price_id(self, *, price, organization) -> str:
        """The Stripe price for ``price`` as charged to ``organization`` (tax included), created once."""
        amount = to_minor(
            charge_amount(organization=organization, net=price.amount, currency=price.currency), price.currency
        )
        known = ProviderPlan.objects.filter(price=price, provider=self.name, amount_minor=amount).first()
        if known:
            return known.provider_plan_id
        created = _call(
            "create the price",
            stripe.Price.create,
            currency=price.currency.lower(),
            unit_amount=amount,
            recurring={"interval": RECURRING[price.interval]},
            product_data={"name": f"LeadFlow {price.plan.name}"},
            metadata={"plan": price.plan.code, "plan_price_id": str(price.pk)},
        )
        try:
            with transaction.atomic():
                ProviderPlan.objects.create(
                    price=price, provider=self.name, amount_minor=amount, provider_plan_id=created["id"]
                )
        except IntegrityError:
            return ProviderPlan.objects.get(price=price, provider=self.name, amount_minor=amount).provider_plan_id
        return created["id"]

    def plan_checkout(self, *, checkout, success_url: str, cancel_url: str) -> CheckoutStart:
        organization = checkout.organization
        price = checkout.plan.price_for(checkout.currency, checkout.interval)
        metadata = {"checkout_token": checkout.token, "plan": checkout.plan.code, "interval": checkout.interval}
        if organization is not None:
            metadata["organization_id"] = str(organization.pk)
        customer = {"customer_email": checkout.email}
        subscription = None
        if organization is not None:
            from ..models import Subscription

            subscription = Subscription.objects.unscoped().filter(organization=organization).first()
        if subscription and subscription.provider == self.name and subscription.provider_customer_id:
            customer = {"customer": subscription.provider_customer_id}
        session = _call(
            "start the checkout",
            stripe.checkout.Session.create,
            mode="subscription",
            line_items=[
                {
                    "price": self.price_id(
                        price=price,
                        organization=organization
                        or _Prospect(checkout.details.get("country", ""), checkout.details.get("tax_id", "")),
                    ),
                    "quantity": 1,
                }
            ],
            success_url=success_url,
            cancel_url=cancel_url,
            client_reference_id=checkout.token,
            metadata=metadata,
            subscription_data={"metadata": metadata},
            **customer,
        )
        return CheckoutStart(self.name, session["id"], url=session["url"])

    def _item_id(self, subscription) -> str:
        remote = _call("read the subscription", stripe.Subscription.retrieve, subscription.provider_subscription_id)
        return remote["items"]["data"][0]["id"]

    def subscription_change_plan(self, *, subscription, price, upgrade: bool) -> bool:
        """Upgrades are prorated now; downgrades take the new price from the next invoice without proration."""
        _call(
            "change the plan",
            stripe.Subscription.modify,
            subscription.provider_subscription_id,
            items=[
                {
                    "id": self._item_id(subscription),
                    "price": self.price_id(price=price, organization=subscription.organization),
                }
            ],
            proration_behavior="always_invoice" if upgrade else "none",
        )
        return False

    def subscription_cancel_at_period_end(self, *, subscription) -> None:
        _call(
            "cancel the subscription",
            stripe.Subscription.modify,
            subscription.provider_subscription_id,
            cancel_at_period_end=True,
        )

    def portal_url(self, *, subscription, return_url: str) -> str | None:
        if not subscription.provider_customer_id:
            return None
        session = _call(
            "open the customer portal",
            stripe.billing_portal.Session.create,
            customer=subscription.provider_customer_id,
            return_url=return_url,
        )
        return session["url"]

    def top_up_checkout(self, *, top_up, success_url: str, cancel_url: str) -> CheckoutStart:
        from ..models import BuyerPaymentMethod

        buyer = top_up.buyer
        metadata = {
            "top_up_id": str(top_up.pk),
            "buyer_id": str(buyer.pk),
            "organization_id": str(buyer.organization_id),
        }
        payment_intent_data = {"metadata": metadata}
        customer: dict = (
            {"customer_creation": "always", "customer_email": buyer.email}
            if buyer.email
            else {"customer_creation": "always"}
        )
        saved = BuyerPaymentMethod.objects.unscoped().filter(buyer=buyer, provider=self.name).first()
        if saved:
            customer = {"customer": saved.customer_id}
        if top_up.save_method:
            payment_intent_data["setup_future_usage"] = "off_session"
        session = _call(
            "start the checkout",
            stripe.checkout.Session.create,
            mode="payment",
            line_items=[
                {
                    "price_data": {
                        "currency": top_up.currency.lower(),
                        "unit_amount": to_minor(top_up.amount, top_up.currency),
                        "product_data": {"name": f"Wallet top-up for {buyer.name}"},
                    },
                    "quantity": 1,
                }
            ],
            success_url=success_url,
            cancel_url=cancel_url,
            client_reference_id=str(top_up.pk),
            metadata=metadata,
            payment_intent_data=payment_intent_data,
            **customer,
        )
        return CheckoutStart(self.name, session["id"], url=session["url"])

    def recharge_wallet(self, *, buyer, amount: Decimal, idempotency_key: str, description: str) -> ChargeResult:
        """An off-session PaymentIntent on the saved card; ``payment_intent.succeeded`` credits the wallet."""
        from ..topups import top_up_for_recharge

        top_up, method, existing = top_up_for_recharge(
            buyer=buyer, amount=amount, idempotency_key=idempotency_key, provider=self.name
        )
        if existing is not None:
            return existing
        if method is None:
            return _recharge_failed(top_up, self.name, "The buyer has no saved card for off-session payments.")
        metadata = {
            "top_up_id": str(top_up.pk),
            "buyer_id": str(buyer.pk),
            "organization_id": str(buyer.organization_id),
        }
        try:
            intent = _call(
                "charge the saved card",
                stripe.PaymentIntent.create,
                amount=to_minor(amount, top_up.currency),
                currency=top_up.currency.lower(),
                customer=method.customer_id,
                payment_method=method.method_id,
                off_session=True,
                confirm=True,
                description=description[:255],
                metadata=metadata,
                idempotency_key=f"leadflow-recharge-{buyer.organization_id}-{idempotency_key}",
            )
        except stripe.CardError as error:
            # Declined, or the bank wants the buyer present (authentication_required): no money moved.
            intent_id = (getattr(error, "json_body", None) or {}).get("error", {}).get("payment_intent", {}).get("id")
            if intent_id:
                _remember_reference(top_up, intent_id)
            return _recharge_failed(top_up, self.name, error.user_message or str(error))
        except ProviderError as error:
            return _recharge_failed(top_up, self.name, error.message)
        _remember_reference(top_up, intent["id"])
        if intent["status"] not in ("succeeded", "processing"):
            return _recharge_failed(top_up, self.name, f"The payment needs the buyer ({intent['status']}).")
        return ChargeResult(ChargeStatus.PENDING, self.name, reference=intent["id"])
