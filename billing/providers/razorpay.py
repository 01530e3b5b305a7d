"""Razorpay (the ``razorpay`` SDK): plans and subscriptions for organizations, orders for wallet top-ups, and
recurring payments on a saved token for auto-recharge. ``RAZORPAY_API_URL`` is the API base (the SDK's
``base_url``). Amounts go over the wire as integers in paise."""

from __future__ import annotations

import logging
from decimal import Decimal

import razorpay
import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..charging import ChargeResult, ChargeStatus
from ..models import BillingInterval, BillingProvider, ProviderPlan
from ..money import charge_amount, to_minor
from . import CheckoutStart, ProviderError

logger = logging.getLogger(__name__)

PERIOD = {BillingInterval.MONTHLY: "monthly", BillingInterval.YEARLY: "yearly"}
# Razorpay subscriptions run for a fixed number of cycles: ten years of either.
TOTAL_COUNT = {BillingInterval.MONTHLY: 120, BillingInterval.YEARLY: 10}
SDK_ERRORS = (razorpay.errors.BadRequestError, razorpay.errors.GatewayError, razorpay.errors.ServerError)


def client() -> razorpay.Client:
    rz = razorpay.Client(
        auth=(settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET), base_url=settings.RAZORPAY_API_URL
    )
    rz.set_app_details({"title": "LeadFlow", "version": "1"})
    return rz


def _call(what: str, function, *args):
    try:
        return function(*args)
    except SDK_ERRORS as error:
        logger.warning("razorpay %s refused: %s", what, error)
        raise ProviderError(f"Razorpay refused to {what}: {error}") from error
    except requests.RequestException as error:
        logger.warning("razorpay %s failed: %s", what, error)
        raise ProviderError(f"Razorpay could not be reached to {what}. Try again in a moment.") from error


def signature_valid(message: str, signature: str, secret: str) -> bool:
    try:
        return client().utility.verify_signature(message, signature or "", secret)
    except razorpay.errors.SignatureVerificationError:
        return False


def webhook_signature_valid(raw_body: bytes, signature: str) -> bool:
    """X-Razorpay-Signature: hex HMAC-SHA256 of the raw body with the webhook secret (the SDK's check)."""
    secrets = [secret.strip() for secret in settings.RAZORPAY_WEBHOOK_SECRET.split(",") if secret.strip()]
    if not secrets or not signature:
        return False
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    utility = client().utility
    # Comma-separated, newest first: after a rotation Razorpay's retries of older events carry the old signature.
    for secret in secrets:
        try:
            if utility.verify_webhook_signature(body, signature, secret):
                return True
        except razorpay.errors.SignatureVerificationError:
            continue
    return False


def subscription_return_valid(*, payment_id: str, subscription_id: str, signature: str) -> bool:
    """Checkout's handler for a subscription: HMAC-SHA256 (API key secret) of ``payment_id|subscription_id``."""
    return signature_valid(f"{payment_id}|{subscription_id}", signature, settings.RAZORPAY_KEY_SECRET)


def order_return_valid(*, order_id: str, payment_id: str, signature: str) -> bool:
    """Checkout's handler for an order: HMAC-SHA256 (API key secret) of ``order_id|payment_id``."""
    return signature_valid(f"{order_id}|{payment_id}", signature, settings.RAZORPAY_KEY_SECRET)


class RazorpayProvider:
    name = BillingProvider.RAZORPAY

    def plan_id(self, *, price, organization) -> str:
        """The Razorpay plan for ``price`` as charged to ``organization`` (tax included), created once."""
        amount = to_minor(
            charge_amount(organization=organization, net=price.amount, currency=price.currency), price.currency
        )
        known = ProviderPlan.objects.filter(price=price, provider=self.name, amount_minor=amount).first()
        if known:
            return known.provider_plan_id
        plan = _call(
            "create the plan",
            client().plan.create,
            {
                "period": PERIOD[price.interval],
                "interval": 1,
                "item": {
                    "name": f"LeadFlow {price.plan.name} ({price.get_interval_display().lower()})",
                    "amount": amount,
                    "currency": price.currency,
                    "description": price.plan.description[:255],
                },
                "notes": {"plan": price.plan.code, "plan_price_id": str(price.pk)},
            },
        )
        try:
            with transaction.atomic():
                ProviderPlan.objects.create(
                    price=price, provider=self.name, amount_minor=amount, provider_plan_id=plan["id"]
                )
        except IntegrityError:  # created meanwhile by another request: use that one
            return ProviderPlan.objects.get(price=price, provider=self.name, amount_minor=amount).provider_plan_id
        return plan["id"]

    def plan_checkout(self, *, checkout, success_url: str, cancel_url: str) -> CheckoutStart:
        organization = checkout.organization
        price = checkout.plan.price_for(checkout.currency, checkout.interval)
        taxed_for = organization or _Prospect(checkout.details.get("country", "IN"), checkout.details.get("tax_id", ""))
        notes = {"checkout_token": checkout.token, "plan": checkout.plan.code, "interval": checkout.interval}
        if organization is not None:
            notes["organization_id"] = str(organization.pk)
        subscription = _call(
            "create the subscription",
            client().subscription.create,
            {
                "plan_id": self.plan_id(price=price, organization=taxed_for),
                "total_count": TOTAL_COUNT[checkout.interval],
                "customer_notify": 1,
                "notes": notes,
            },
        )
        return CheckoutStart(
            self.name,
            subscription["id"],
            url=subscription.get("short_url", ""),
            options={
                "key": settings.RAZORPAY_KEY_ID,
                "subscription_id": subscription["id"],
                "name": settings.BILLING_SUPPLIER_NAME,
                "description": f"{checkout.plan.name} plan, {checkout.get_interval_display().lower()}",
                "prefill": {"email": checkout.email},
                "notes": notes,
                "callback_url": success_url,
            },
        )

    def subscription_change_plan(self, *, subscription, price, upgrade: bool) -> bool:
        """Upgrades apply now (Razorpay charges the difference); downgrades at the end of the cycle."""
        _call(
            "change the plan",
            client().subscription.edit,
            subscription.provider_subscription_id,
            {
                "plan_id": self.plan_id(price=price, organization=subscription.organization),
                "schedule_change_at": "now" if upgrade else "cycle_end",
                "customer_notify": 1,
            },
        )
        return False

    def subscription_cancel_at_period_end(self, *, subscription) -> None:
        _call(
            "cancel the subscription",
            client().subscription.cancel,
            subscription.provider_subscription_id,
            {"cancel_at_cycle_end": 1},
        )

    def portal_url(self, *, subscription, return_url: str) -> str | None:
        return None  # Razorpay has no customer portal; cards are changed by paying through a new subscription link

    def top_up_checkout(self, *, top_up, success_url: str, cancel_url: str) -> CheckoutStart:
        """A payment link (a hosted page to send the buyer) — or, to save the card for auto-recharge, an order for
        Checkout.js with the buyer as a Razorpay customer and a recurring token."""
        if not top_up.save_method:
            return self._payment_link(top_up=top_up, success_url=success_url)
        buyer = top_up.buyer
        rz = client()
        order_request = {
            "amount": to_minor(top_up.amount, top_up.currency),
            "currency": top_up.currency,
            "receipt": f"top-up-{top_up.pk}",
            "notes": {
                "top_up_id": str(top_up.pk),
                "buyer_id": str(buyer.pk),
                "organization_id": str(buyer.organization_id),
            },
        }
        options = {}
        if top_up.save_method:  # always true here; the payment link above covers the rest
            customer = _call(
                "create the customer",
                rz.customer.create,
                {
                    "name": buyer.name[:50],
                    "email": buyer.email,
                    "contact": buyer.phone,
                    "fail_existing": "0",
                    "notes": {"buyer_id": str(buyer.pk)},
                },
            )
            # A card saved for recurring charges ("as presented": any amount up to max_amount, when we ask).
            order_request.update(
                {
                    "customer_id": customer["id"],
                    "method": "card",
                    "token": {
                        "max_amount": to_minor(top_up.amount * 10, top_up.currency),
                        "expire_at": int(timezone.now().timestamp()) + 10 * 365 * 86400,
                        "frequency": "as_presented",
                    },
                }
            )
            options = {"customer_id": customer["id"], "recurring": "1"}
        order = _call("create the order", rz.order.create, order_request)
        return CheckoutStart(
            self.name,
            order["id"],
            options={
                "key": settings.RAZORPAY_KEY_ID,
                "order_id": order["id"],
                "amount": order["amount"],
                "currency": order["currency"],
                "name": settings.BILLING_SUPPLIER_NAME,
                "description": f"Wallet top-up for {buyer.name}",
                "prefill": {"name": buyer.name, "email": buyer.email, "contact": buyer.phone},
                "notes": order_request["notes"],
                "callback_url": success_url,
                **options,
            },
        )

    def _payment_link(self, *, top_up, success_url: str) -> CheckoutStart:
        buyer = top_up.buyer
        customer = {
            key: value
            for key, value in (("name", buyer.name), ("email", buyer.email), ("contact", buyer.phone))
            if value
        }
        link = _call(
            "create the payment link",
            client().payment_link.create,
            {
                "amount": to_minor(top_up.amount, top_up.currency),
                "currency": top_up.currency,
                "accept_partial": False,
                "description": f"Wallet top-up for {buyer.name}"[:255],
                "customer": customer,
                "notify": {"sms": False, "email": False},
                "reminder_enable": False,
                "reference_id": f"top-up-{top_up.pk}",
                "notes": {
                    "top_up_id": str(top_up.pk),
                    "buyer_id": str(buyer.pk),
                    "organization_id": str(buyer.organization_id),
                },
                "callback_url": success_url,
                "callback_method": "get",
            },
        )
        return CheckoutStart(self.name, link["id"], url=link["short_url"])

    def recharge_wallet(self, *, buyer, amount: Decimal, idempotency_key: str, description: str) -> ChargeResult:
        """A recurring payment on the buyer's saved token. The wallet is credited by ``payment.captured``."""
        from ..topups import top_up_for_recharge

        top_up, method, existing = top_up_for_recharge(
            buyer=buyer, amount=amount, idempotency_key=idempotency_key, provider=self.name
        )
        if existing is not None:
            return existing
        if method is None:
            return _recharge_failed(top_up, self.name, "The buyer has no saved Razorpay payment method.")
        rz = client()
        notes = {"top_up_id": str(top_up.pk), "buyer_id": str(buyer.pk), "organization_id": str(buyer.organization_id)}
        try:
            order = _call(
                "create the order",
                rz.order.create,
                {
                    "amount": to_minor(amount, top_up.currency),
                    "currency": top_up.currency,
                    "receipt": f"top-up-{top_up.pk}",
                    "payment_capture": True,
                    "notes": notes,
                },
            )
            _remember_reference(top_up, order["id"])
            payment = _call(
                "charge the saved card",
                rz.payment.createRecurring,
                {
                    "email": buyer.email,
                    "contact": buyer.phone,
                    "amount": to_minor(amount, top_up.currency),
                    "currency": top_up.currency,
                    "order_id": order["id"],
                    "customer_id": method.customer_id,
                    "token": method.method_id,
                    "recurring": "1",
                    "description": description[:255],
                    "notes": notes,
                },
            )
        except ProviderError as error:
            return _recharge_failed(top_up, self.name, error.message)
        return ChargeResult(ChargeStatus.PENDING, self.name, reference=payment.get("razorpay_payment_id", order["id"]))


class _Prospect:
    """Tax for a signup that has no organization yet: the country and GSTIN/VAT id given at checkout."""

    def __init__(self, country: str, tax_id: str = ""):
        self.country = country
        self.tax_id = tax_id


def _remember_reference(top_up, reference: str) -> None:
    type(top_up).objects.unscoped().filter(pk=top_up.pk).update(provider_reference=reference)
    top_up.provider_reference = reference


def _recharge_failed(top_up, provider: str, error: str) -> ChargeResult:
    from ..topups import top_up_failed

    top_up_failed(top_up_id=top_up.pk, error=error)
    return ChargeResult(ChargeStatus.FAILED, provider, reference=top_up.provider_reference, error=error)
