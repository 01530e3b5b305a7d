"""Billing fixtures: provider stand-ins on 127.0.0.1, signed payloads shaped like Razorpay's and Stripe's, and an
organization with its owner and subscription."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from accounts.constants import Role
from billing.services import plans_seed
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from .standins import StandIn, serve

RAZORPAY_KEY_ID = "rzp_test_1DP5mmOlF5G5ag"
RAZORPAY_KEY_SECRET = "thisisasecretkey"
RAZORPAY_WEBHOOK_SECRET = "webhook-secret-rzp"
STRIPE_SECRET_KEY = "sk_test_51LeadFlowStandIn0000000000000000"
STRIPE_WEBHOOK_SECRET = "whsec_leadflowtestsecret"


@pytest.fixture
def plans(db):
    plans_seed()
    from billing.models import Plan

    return {plan.code: plan for plan in Plan.objects.all()}


@pytest.fixture
def org_owner(db, plans):
    """An Indian organization (INR, GST) on a Growth trial, and its owner."""
    from accounts.services import organization_create

    user = UserFactory(email="owner@sunrise.example")
    organization = organization_create(
        owner=user, name="Sunrise Homes", plan=plans["growth"], country="IN", currency="INR", tax_id="27AAPFU0939F1ZV"
    )
    return organization, user


@pytest.fixture
def razorpay_api(settings):
    stand_in = StandIn()
    server = serve(stand_in)
    settings.RAZORPAY_KEY_ID = RAZORPAY_KEY_ID
    settings.RAZORPAY_KEY_SECRET = RAZORPAY_KEY_SECRET
    settings.RAZORPAY_WEBHOOK_SECRET = RAZORPAY_WEBHOOK_SECRET
    settings.RAZORPAY_API_URL = stand_in.url
    settings.BILLING_SUPPLIER_GSTIN = "27AABCL1234F1Z5"
    yield stand_in
    server.shutdown()
    server.server_close()


@pytest.fixture
def stripe_api(settings):
    stand_in = StandIn()
    server = serve(stand_in)
    settings.STRIPE_SECRET_KEY = STRIPE_SECRET_KEY
    previous = stripe.api_base
    stripe.api_base = stand_in.url
    # The stripe SDK retries on connection errors; against a local stand-in there is nothing to wait for.
    previous_retries = stripe.max_network_retries
    stripe.max_network_retries = 0
    yield stand_in
    stripe.api_base = previous
    stripe.max_network_retries = previous_retries
    server.shutdown()
    server.server_close()


# Razorpay payloads ------------------------------------------------------------------------------------------------


def razorpay_sign(body: bytes, secret: str = RAZORPAY_WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def razorpay_subscription_entity(
    sub_id: str, *, plan_id: str, status: str = "active", notes=None, start=1767225600, end=1769904000, paid_count=1
) -> dict:
    return {
        "id": sub_id,
        "entity": "subscription",
        "plan_id": plan_id,
        "customer_id": "cust_JXkRCtKEIlCdcB",
        "status": status,
        "type": 2,
        "current_start": start,
        "current_end": end,
        "ended_at": None,
        "quantity": 1,
        "notes": notes if notes is not None else [],
        "charge_at": end,
        "start_at": start,
        "end_at": 2082758400,
        "auth_attempts": 0,
        "total_count": 120,
        "paid_count": paid_count,
        "customer_notify": True,
        "created_at": start - 600,
        "expire_by": None,
        "short_url": f"https://rzp.io/i/{sub_id[-6:]}",
        "has_scheduled_changes": False,
        "change_scheduled_at": None,
        "source": "api",
        "payment_method": "card",
        "offer_id": None,
        "remaining_count": 119,
    }


def razorpay_payment_entity(
    pay_id: str,
    *,
    amount: int,
    status: str = "captured",
    order_id=None,
    invoice_id=None,
    notes=None,
    token_id=None,
    customer_id=None,
    created_at=1767225660,
    **extra,
) -> dict:
    return {
        "id": pay_id,
        "entity": "payment",
        "amount": amount,
        "currency": "INR",
        "status": status,
        "order_id": order_id,
        "invoice_id": invoice_id,
        "international": False,
        "method": "card",
        "amount_refunded": 0,
        "refund_status": None,
        "captured": status == "captured",
        "description": None,
        "card_id": "card_JXkRD2Ij0nf3Ce",
        "card": {
            "id": "card_JXkRD2Ij0nf3Ce",
            "entity": "card",
            "name": "Asha Rao",
            "last4": "1111",
            "network": "Visa",
            "type": "credit",
            "issuer": None,
            "international": False,
            "emi": False,
        },
        "bank": None,
        "wallet": None,
        "vpa": None,
        "email": "owner@sunrise.example",
        "contact": "+919812345678",
        "customer_id": customer_id,
        "token_id": token_id,
        "notes": notes if notes is not None else [],
        "fee": 1180,
        "tax": 180,
        "error_code": None,
        "error_description": None,
        "error_source": None,
        "error_step": None,
        "error_reason": None,
        "created_at": created_at,
        **extra,
    }


def razorpay_event(event: str, *, created_at: int, **entities) -> bytes:
    body = {
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": event,
        "contains": list(entities),
        "payload": {name: {"entity": entity} for name, entity in entities.items()},
        "created_at": created_at,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def post_razorpay(client, body: bytes, *, event_id: str, signature: str | None = None):
    return client.post(
        "/api/webhooks/razorpay/",
        data=body,
        content_type="application/json",
        HTTP_X_RAZORPAY_SIGNATURE=signature if signature is not None else razorpay_sign(body),
        HTTP_X_RAZORPAY_EVENT_ID=event_id,
    )


# Stripe payloads --------------------------------------------------------------------------------------------------


def stripe_sign(body: bytes, *, secret: str = STRIPE_WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def stripe_event(event_type: str, obj: dict, *, event_id: str, created: int | None = None) -> bytes:
    body = {
        "id": event_id,
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_standin", "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(body, separators=(",", ":")).encode()


@pytest.fixture
def stripe_endpoint(db):
    """dj-stripe's webhook endpoint row: its UUID is the URL, its secret checks Stripe-Signature."""
    from djstripe.models import WebhookEndpoint

    return WebhookEndpoint.objects.create(
        id="we_1LeadFlowTest",
        livemode=False,
        url="https://leadflow.example.com/stripe/webhook/",
        enabled_events=["*"],
        secret=STRIPE_WEBHOOK_SECRET,
        status="enabled",
        api_version="2025-08-27.basil",
    )


def post_stripe(client, endpoint, body: bytes, *, signature: str | None = None):
    return client.post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature if signature is not None else stripe_sign(body),
    )


def member(organization, role=Role.OWNER, **kwargs):
    user = UserFactory(**kwargs)
    MembershipFactory(organization=organization, user=user, role=role)
    return user


__all__ = ["OrganizationFactory"]


# Stripe objects, as the API returns them (the fields dj-stripe and LeadFlow read, with Stripe's names) -----------------


def stripe_account() -> dict:
    return {
        "id": "acct_1LeadFlowPlatform",
        "object": "account",
        "business_type": "company",
        "business_profile": {
            "name": "LeadFlow",
            "url": "https://leadflow.example.com",
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "mcc": None,
            "product_description": None,
        },
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "country": "US",
        "created": 1700000000,
        "default_currency": "usd",
        "details_submitted": True,
        "email": "billing@leadflow.example.com",
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": "/v1/accounts/acct_1LeadFlowPlatform/external_accounts",
        },
        "metadata": {},
        "payouts_enabled": True,
        "settings": {
            "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
            "dashboard": {"display_name": "LeadFlow", "timezone": "Etc/UTC"},
            "payments": {"statement_descriptor": "LEADFLOW"},
        },
        "tos_acceptance": {"date": None},
        "type": "standard",
    }


def stripe_customer(customer_id: str, email: str) -> dict:
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": 1767225600,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": email,
        "invoice_prefix": "LF0001",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def stripe_price(
    price_id: str,
    *,
    unit_amount: int,
    currency: str = "usd",
    interval: str = "month",
    product: str = "prod_LeadFlowGrowth",
) -> dict:
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": 1767225000,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product,
        "recurring": {
            "aggregate_usage": None,
            "interval": interval,
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def stripe_product(product_id: str = "prod_LeadFlowGrowth", name: str = "LeadFlow Growth") -> dict:
    return {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": 1767225000,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": 1767225000,
        "url": None,
    }


def stripe_subscription(
    sub_id: str,
    *,
    customer: str,
    price: dict,
    status: str = "active",
    start: int = 1767225600,
    end: int = 1769904000,
    cancel_at_period_end: bool = False,
    metadata=None,
) -> dict:
    item = {
        "id": f"si_{sub_id[4:]}",
        "object": "subscription_item",
        "created": start,
        "current_period_start": start,
        "current_period_end": end,
        "discounts": [],
        "metadata": {},
        "price": price,
        "quantity": 1,
        "subscription": sub_id,
        "tax_rates": [],
    }
    return {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None},
        "billing_cycle_anchor": start,
        "billing_cycle_anchor_config": None,
        "cancel_at": end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": start,
        "currency": price["currency"],
        "customer": customer,
        "days_until_due": None,
        "default_payment_method": "pm_1LeadFlowCard",
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata or {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": start,
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def stripe_checkout_session(
    session_id: str,
    *,
    mode: str,
    customer: str,
    email: str,
    metadata: dict,
    subscription: str | None = None,
    payment_intent: str | None = None,
    amount_total: int,
    currency: str = "usd",
    client_reference_id: str | None = None,
) -> dict:
    return {
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": "https://leadflow.example.com/pricing/",
        "client_reference_id": client_reference_id,
        "consent": None,
        "created": 1767225600,
        "currency": currency,
        "customer": customer,
        "customer_creation": "always" if mode == "payment" else None,
        "customer_details": {
            "address": None,
            "email": email,
            "name": "Asha Rao",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        "customer_email": email,
        "expires_at": 1767312000,
        "invoice": None,
        "livemode": False,
        "locale": None,
        "metadata": metadata,
        "mode": mode,
        "payment_intent": payment_intent,
        "payment_link": None,
        "payment_method_types": ["card"],
        "payment_status": "paid",
        "status": "complete",
        "subscription": subscription,
        "success_url": "https://leadflow.example.com/pricing/done/",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None,
    }


def stripe_invoice(
    invoice_id: str,
    *,
    customer: str,
    subscription: str,
    amount: int,
    currency: str = "usd",
    start: int = 1767225600,
    end: int = 1769904000,
    status: str = "paid",
) -> dict:
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "LeadFlow",
        "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0,
        "amount_remaining": 0 if status == "paid" else amount,
        "attempt_count": 1,
        "attempted": True,
        "auto_advance": False,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": end,
        "currency": currency,
        "customer": customer,
        "customer_email": "owner@example.com",
        "livemode": False,
        "lines": {
            "object": "list",
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{invoice_id}/lines",
            "data": [
                {
                    "id": f"il_{invoice_id[3:]}",
                    "object": "line_item",
                    "amount": amount,
                    "currency": currency,
                    "description": "1 × LeadFlow Growth",
                    "period": {"start": start, "end": end},
                    "quantity": 1,
                }
            ],
        },
        "metadata": {},
        "number": "LF0001-0001",
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription},
            "type": "subscription_details",
        },
        "period_end": end,
        "period_start": start,
        "status": status,
        "subtotal": amount,
        "total": amount,
    }


def stripe_payment_method(pm_id: str = "pm_1LeadFlowCard", customer: str | None = None) -> dict:
    return {
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": None, "email": None, "name": "Asha Rao", "phone": None},
        "card": {
            "brand": "visa",
            "checks": {"cvc_check": "pass"},
            "country": "US",
            "exp_month": 12,
            "exp_year": 2030,
            "fingerprint": "Xt5EWLLDS7FJjR1c",
            "funding": "credit",
            "last4": "4242",
            "networks": {"available": ["visa"], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": 1767225600,
        "customer": customer,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def stripe_payment_intent(
    pi_id: str,
    *,
    amount: int,
    customer: str,
    metadata: dict,
    status: str = "succeeded",
    currency: str = "usd",
    payment_method="pm_1LeadFlowCard",
    last_payment_error=None,
) -> dict:
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount if status == "succeeded" else 0,
        "application": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{pi_id}_secret_standin",
        "confirmation_method": "automatic",
        "created": 1767225600,
        "currency": currency,
        "customer": customer,
        "description": None,
        "last_payment_error": last_payment_error,
        "latest_charge": f"ch_{pi_id[3:]}",
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_types": ["card"],
        "receipt_email": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "status": status,
        "transfer_data": None,
    }
