"""Buyer wallet top-ups and auto-recharge: credited only from the provider's verified confirmation (never from the
browser's return), once per payment; the payment method saved for off-session charges; failures alert the owners."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from django.core import mail

from accounts.constants import Role
from billing.charging import ChargeStatus, wallet_recharge_charge
from billing.models import BuyerPaymentMethod, WalletTopUp
from campaigns.models import Wallet, WalletEntry
from tests.factories import BuyerFactory, MembershipFactory, OrganizationFactory, UserFactory

from .conftest import (
    RAZORPAY_KEY_SECRET,
    post_razorpay,
    post_stripe,
    razorpay_event,
    razorpay_payment_entity,
    stripe_account,
    stripe_checkout_session,
    stripe_customer,
    stripe_event,
    stripe_payment_intent,
    stripe_payment_method,
)

pytestmark = pytest.mark.django_db


def _balance(buyer) -> Decimal:
    wallet = Wallet.objects.unscoped().filter(buyer=buyer).first()
    return wallet.balance if wallet else Decimal("0")


@pytest.fixture
def shop(db):
    """An organization selling leads, its manager and owner, and a buyer."""

    def build(currency="INR", country="IN"):
        organization = OrganizationFactory(currency=currency, country=country)
        owner, manager = UserFactory(), UserFactory()
        MembershipFactory(organization=organization, user=owner, role=Role.OWNER)
        MembershipFactory(organization=organization, user=manager, role=Role.MANAGER)
        buyer = BuyerFactory(organization=organization, email="buyer@acme.example", phone="+919812345678")
        return organization, owner, manager, buyer

    return build


def test_offline_top_up_is_credited_once_by_the_confirmation(client, shop, django_capture_on_commit_callbacks):
    _organization, _, manager, buyer = shop()
    client.force_login(manager)
    assert client.get("/billing/wallets/").status_code == 200
    refused = client.post(f"/billing/wallets/{buyer.pk}/top-up/", {"amount": "0.50"})
    assert refused.status_code == 400 and b"field-error" in refused.content
    response = client.post(f"/billing/wallets/{buyer.pk}/top-up/", {"amount": "2500"})
    top_up = WalletTopUp.objects.unscoped().get(buyer=buyer)
    assert response.status_code == 302 and response["Location"] == f"/billing/top-ups/{top_up.pk}/"
    assert top_up.checkout_url.startswith("/billing/offline/top-up/offline_")
    assert top_up.checkout_url in client.get(response["Location"]).content.decode()
    assert _balance(buyer) == 0  # nothing until the payment is confirmed
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(top_up.checkout_url).status_code == 200
        client.post(top_up.checkout_url)  # paying twice credits once
    assert _balance(buyer) == Decimal("2500.00")
    top_up = WalletTopUp.objects.unscoped().get(buyer=buyer)
    assert top_up.status == "paid" and WalletEntry.objects.unscoped().filter(buyer=buyer).count() == 1


def test_a_buyer_of_another_organization_cannot_be_topped_up(client, shop):
    _, _, manager, _ = shop()
    _, _, _, theirs = shop()
    client.force_login(manager)
    assert client.post(f"/billing/wallets/{theirs.pk}/top-up/", {"amount": "100"}).status_code == 404
    assert not WalletTopUp.objects.unscoped().exists()


# Razorpay ---------------------------------------------------------------------------------------------------------


def _razorpay_orders(razorpay_api):
    counter = iter(range(1, 100))

    def create_order(recorded, match):
        body = recorded.json()
        return {
            "id": f"order_LeadFlow{next(counter):05d}",
            "entity": "order",
            "amount": body["amount"],
            "amount_paid": 0,
            "amount_due": body["amount"],
            "currency": body["currency"],
            "receipt": body["receipt"],
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": body["notes"],
            "created_at": 1767225600,
        }

    razorpay_api.route("POST", "/v1/orders", create_order)
    razorpay_api.route(
        "POST",
        "/v1/customers",
        lambda recorded, match: {
            "id": "cust_LeadFlowBuyer1",
            "entity": "customer",
            "name": recorded.json()["name"],
            "email": recorded.json()["email"],
            "contact": recorded.json()["contact"],
            "gstin": None,
            "notes": recorded.json()["notes"],
            "created_at": 1767225600,
        },
    )


def test_razorpay_order_top_up_credits_from_the_webhook_only_and_saves_the_token(
    client, shop, razorpay_api, django_capture_on_commit_callbacks
):
    _organization, _owner, manager, buyer = shop()
    _razorpay_orders(razorpay_api)
    client.force_login(manager)
    response = client.post(f"/billing/wallets/{buyer.pk}/top-up/", {"amount": "5000", "save_method": "on"})
    top_up = WalletTopUp.objects.unscoped().get(buyer=buyer)
    assert response.status_code == 302 and response["Location"] == f"/billing/top-ups/{top_up.pk}/"
    order_request = razorpay_api.calls("POST", "/v1/orders")[0].json()
    assert order_request["amount"] == 500000 and order_request["currency"] == "INR"
    assert (
        order_request["customer_id"] == "cust_LeadFlowBuyer1" and order_request["token"]["frequency"] == "as_presented"
    )
    assert order_request["notes"]["top_up_id"] == str(top_up.pk)
    page = client.get(response["Location"]).content.decode()
    assert '"order_id": "order_LeadFlow00001"' in page and '"recurring": "1"' in page

    # Checkout's handler returns with a valid signature: acknowledged, not credited.
    signature = hmac.new(
        RAZORPAY_KEY_SECRET.encode(), b"order_LeadFlow00001|pay_LeadFlowTopUp1", hashlib.sha256
    ).hexdigest()
    client.post(
        response["Location"],
        {
            "razorpay_payment_id": "pay_LeadFlowTopUp1",
            "razorpay_order_id": "order_LeadFlow00001",
            "razorpay_signature": signature,
        },
    )
    assert _balance(buyer) == 0

    payment = razorpay_payment_entity(
        "pay_LeadFlowTopUp1",
        amount=500000,
        order_id="order_LeadFlow00001",
        notes=order_request["notes"],
        token_id="token_LeadFlowCard1",
        customer_id="cust_LeadFlowBuyer1",
    )
    order = {
        "id": "order_LeadFlow00001",
        "entity": "order",
        "amount": 500000,
        "amount_paid": 500000,
        "amount_due": 0,
        "currency": "INR",
        "receipt": order_request["receipt"],
        "status": "paid",
        "attempts": 1,
        "notes": order_request["notes"],
        "created_at": 1767225600,
    }
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(
            client, razorpay_event("payment.captured", created_at=1767225700, payment=payment), event_id="evt_cap"
        )
        post_razorpay(
            client,
            razorpay_event("order.paid", created_at=1767225701, payment=payment, order=order),
            event_id="evt_paid",
        )
    assert _balance(buyer) == Decimal("5000.00")
    entry = WalletEntry.objects.unscoped().get(buyer=buyer)
    assert entry.external_reference == "razorpay:pay_LeadFlowTopUp1"
    method = BuyerPaymentMethod.objects.unscoped().get(buyer=buyer)
    assert (method.provider, method.customer_id, method.method_id, method.label) == (
        "razorpay",
        "cust_LeadFlowBuyer1",
        "token_LeadFlowCard1",
        "Visa •••• 1111",
    )


def test_razorpay_payment_link_top_up_is_credited_by_payment_link_paid(
    client, shop, razorpay_api, django_capture_on_commit_callbacks
):
    _, _, manager, buyer = shop()

    def create_link(recorded, match):
        body = recorded.json()
        return {
            "id": "plink_LeadFlowTopUp1",
            "entity": "payment_link",
            "amount": body["amount"],
            "amount_paid": 0,
            "currency": body["currency"],
            "accept_partial": False,
            "description": body["description"],
            "customer": body["customer"],
            "notify": body["notify"],
            "reference_id": body["reference_id"],
            "notes": body["notes"],
            "callback_url": body["callback_url"],
            "callback_method": "get",
            "status": "created",
            "short_url": "https://rzp.io/i/LeadFlow1",
            "upi_link": False,
            "created_at": 1767225600,
            "expire_by": 0,
            "reminder_enable": False,
            "payments": None,
        }

    razorpay_api.route("POST", "/v1/payment_links", create_link)
    client.force_login(manager)
    response = client.post(f"/billing/wallets/{buyer.pk}/top-up/", {"amount": "750"})
    top_up = WalletTopUp.objects.unscoped().get(buyer=buyer)
    request = razorpay_api.calls("POST", "/v1/payment_links")[0].json()
    assert (request["amount"], request["reference_id"], request["customer"]["email"]) == (
        75000,
        f"top-up-{top_up.pk}",
        "buyer@acme.example",
    )
    assert request["callback_url"] == f"http://testserver/billing/top-ups/{top_up.pk}/"
    assert "https://rzp.io/i/LeadFlow1" in client.get(response["Location"]).content.decode()
    # The buyer comes back through the callback URL: still nothing credited.
    assert client.get(f"/billing/top-ups/{top_up.pk}/?razorpay_payment_id=pay_x&razorpay_payment_link_status=paid")
    assert _balance(buyer) == 0
    link = {
        **create_link(razorpay_api.calls("POST", "/v1/payment_links")[0], None),
        "status": "paid",
        "amount_paid": 75000,
    }
    payment = razorpay_payment_entity("pay_LeadFlowLink1", amount=75000, order_id="order_LeadFlowLink1")
    order = {
        "id": "order_LeadFlowLink1",
        "entity": "order",
        "amount": 75000,
        "amount_paid": 75000,
        "amount_due": 0,
        "currency": "INR",
        "receipt": None,
        "status": "paid",
        "attempts": 1,
        "notes": [],
        "created_at": 1767225600,
    }
    body = razorpay_event("payment_link.paid", created_at=1767225900, payment_link=link, payment=payment, order=order)
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(client, body, event_id="evt_link_paid")
        post_razorpay(client, body, event_id="evt_link_paid")
    assert _balance(buyer) == Decimal("750.00")
    top_up.refresh_from_db()
    assert (top_up.status, top_up.payment_reference) == ("paid", "pay_LeadFlowLink1")


def test_razorpay_auto_recharge_charges_the_token_once_and_credits_on_capture(
    client, shop, razorpay_api, django_capture_on_commit_callbacks
):
    organization, _, _, buyer = shop()
    BuyerPaymentMethod.objects.unscoped().create(
        organization=organization,
        buyer=buyer,
        provider="razorpay",
        customer_id="cust_LeadFlowBuyer1",
        method_id="token_LeadFlowCard1",
    )
    _razorpay_orders(razorpay_api)
    razorpay_api.route(
        "POST",
        "/v1/payments/create/recurring",
        lambda recorded, match: {
            "razorpay_payment_id": "pay_LeadFlowRecur1",
            "razorpay_order_id": recorded.json()["order_id"],
            "razorpay_signature": "0" * 64,
        },
    )

    result = wallet_recharge_charge(buyer=buyer, amount=Decimal("1000"), idempotency_key="low-balance-1")
    again = wallet_recharge_charge(buyer=buyer, amount=Decimal("1000"), idempotency_key="low-balance-1")
    assert (result.status, result.reference) == (ChargeStatus.PENDING, "pay_LeadFlowRecur1")
    assert again.status == ChargeStatus.PENDING
    recurring = razorpay_api.calls("POST", "/v1/payments/create/recurring")
    assert len(recurring) == 1  # the same attempt is not charged twice
    sent = recurring[0].json()
    assert (sent["token"], sent["customer_id"], sent["amount"], sent["recurring"]) == (
        "token_LeadFlowCard1",
        "cust_LeadFlowBuyer1",
        100000,
        "1",
    )
    assert _balance(buyer) == 0
    top_up = WalletTopUp.objects.unscoped().get(buyer=buyer)
    payment = razorpay_payment_entity(
        "pay_LeadFlowRecur1", amount=100000, order_id=top_up.provider_reference, notes=sent["notes"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(
            client, razorpay_event("payment.captured", created_at=1767225800, payment=payment), event_id="evt_r"
        )
    assert _balance(buyer) == Decimal("1000.00")


def test_auto_recharge_without_a_saved_method_fails_and_alerts_the_owners(
    shop, razorpay_api, django_capture_on_commit_callbacks
):
    _organization, owner, _, buyer = shop()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = wallet_recharge_charge(buyer=buyer, amount=Decimal("1000"), idempotency_key="low-balance-2")
    assert result.failed and "no saved" in result.error
    assert not razorpay_api.requests
    assert [(m.subject, m.to) for m in mail.outbox] == [(f"Auto-recharge failed for {buyer.name}", [owner.email])]


# Stripe -----------------------------------------------------------------------------------------------------------


def test_stripe_checkout_top_up_saves_the_card_and_credits_once(
    client, shop, stripe_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    organization, _, manager, buyer = shop(currency="USD", country="US")
    stripe_api.route("GET", "/v1/account", stripe_account())

    def create_session(recorded, match):
        form = recorded.form()
        session = stripe_checkout_session(
            "cs_test_TopUp1",
            mode="payment",
            customer=None,
            email=form.get("customer_email"),
            metadata={k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            amount_total=int(form["line_items[0][price_data][unit_amount]"]),
        )
        session.update(
            {"status": "open", "payment_status": "unpaid", "url": "https://checkout.stripe.com/c/pay/cs_test_TopUp1"}
        )
        return session

    stripe_api.route("POST", "/v1/checkout/sessions", create_session)
    client.force_login(manager)
    response = client.post(f"/billing/wallets/{buyer.pk}/top-up/", {"amount": "150", "save_method": "on"})
    assert response.status_code == 302
    assert "https://checkout.stripe.com/c/pay/cs_test_TopUp1" in client.get(response["Location"]).content.decode()
    form = stripe_api.calls("POST", "/v1/checkout/sessions")[0].form()
    assert form["mode"] == "payment" and form["payment_intent_data[setup_future_usage]"] == "off_session"
    assert form["line_items[0][price_data][unit_amount]"] == "15000" and form["customer_creation"] == "always"
    top_up = WalletTopUp.objects.unscoped().get(buyer=buyer)
    metadata = {"top_up_id": str(top_up.pk), "buyer_id": str(buyer.pk), "organization_id": str(organization.pk)}
    # The buyer paid: Stripe holds the completed session, its customer and PaymentIntent.
    session = stripe_checkout_session(
        "cs_test_TopUp1",
        mode="payment",
        customer="cus_LeadFlowBuyer",
        email=buyer.email,
        metadata=metadata,
        payment_intent="pi_LeadFlowTopUp1",
        amount_total=15000,
    )
    stripe_api.objects["cs_test_TopUp1"] = session
    stripe_api.objects["cus_LeadFlowBuyer"] = stripe_customer("cus_LeadFlowBuyer", buyer.email)
    intent = stripe_payment_intent("pi_LeadFlowTopUp1", amount=15000, customer="cus_LeadFlowBuyer", metadata=metadata)
    stripe_api.route(
        "GET",
        "/v1/payment_intents/pi_LeadFlowTopUp1",
        lambda recorded, match: (
            {**intent, "payment_method": stripe_payment_method(customer="cus_LeadFlowBuyer")}
            if recorded.query.get("expand[0]") == ["payment_method"]
            else intent
        ),
    )
    stripe_api.objects["pm_1LeadFlowCard"] = stripe_payment_method(customer="cus_LeadFlowBuyer")

    assert client.get(f"/billing/top-ups/{top_up.pk}/").status_code == 200  # the success page credits nothing
    assert _balance(buyer) == 0
    body = stripe_event("checkout.session.completed", session, event_id="evt_TopUp1")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_stripe(client, stripe_endpoint, body).status_code == 200
        assert post_stripe(client, stripe_endpoint, body).status_code == 200
    assert _balance(buyer) == Decimal("150.00")
    assert WalletEntry.objects.unscoped().get(buyer=buyer).external_reference == "stripe:pi_LeadFlowTopUp1"
    method = BuyerPaymentMethod.objects.unscoped().get(buyer=buyer)
    assert (method.customer_id, method.method_id, method.label) == (
        "cus_LeadFlowBuyer",
        "pm_1LeadFlowCard",
        "visa •••• 4242",
    )


@pytest.fixture
def saved_card(shop):
    organization, owner, _, buyer = shop(currency="USD", country="US")
    BuyerPaymentMethod.objects.unscoped().create(
        organization=organization,
        buyer=buyer,
        provider="stripe",
        customer_id="cus_LeadFlowBuyer",
        method_id="pm_1LeadFlowCard",
        label="visa •••• 4242",
    )
    return organization, owner, buyer


def test_stripe_auto_recharge_is_an_off_session_payment_intent_credited_by_its_webhook(
    client, saved_card, stripe_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    organization, _, buyer = saved_card
    stripe_api.route("GET", "/v1/account", stripe_account())
    stripe_api.route(
        "POST",
        "/v1/payment_intents",
        lambda recorded, match: stripe_payment_intent(
            "pi_LeadFlowRecharge1",
            amount=int(recorded.form()["amount"]),
            customer=recorded.form()["customer"],
            metadata={k[9:-1]: v for k, v in recorded.form().items() if k.startswith("metadata[")},
        ),
    )
    result = wallet_recharge_charge(buyer=buyer, amount=Decimal("75"), idempotency_key="low-balance-7")
    assert (result.status, result.reference) == (ChargeStatus.PENDING, "pi_LeadFlowRecharge1")
    call = stripe_api.calls("POST", "/v1/payment_intents")[0]
    form = call.form()
    assert (form["amount"], form["currency"], form["customer"], form["payment_method"]) == (
        "7500",
        "usd",
        "cus_LeadFlowBuyer",
        "pm_1LeadFlowCard",
    )
    assert form["off_session"] == "true" and form["confirm"] == "true"
    assert call.headers["Idempotency-Key"] == f"leadflow-recharge-{organization.pk}-low-balance-7"
    assert _balance(buyer) == 0

    intent = stripe_payment_intent(
        "pi_LeadFlowRecharge1",
        amount=7500,
        customer="cus_LeadFlowBuyer",
        metadata=json.loads(json.dumps({k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")})),
    )
    stripe_api.objects["pi_LeadFlowRecharge1"] = intent
    stripe_api.objects["cus_LeadFlowBuyer"] = stripe_customer("cus_LeadFlowBuyer", buyer.email)
    stripe_api.objects["pm_1LeadFlowCard"] = stripe_payment_method(customer="cus_LeadFlowBuyer")
    stripe_api.objects["ch_LeadFlowRecharge1"] = {
        "id": "ch_LeadFlowRecharge1",
        "object": "charge",
        "amount": 7500,
        "currency": "usd",
        "customer": "cus_LeadFlowBuyer",
        "payment_intent": "pi_LeadFlowRecharge1",
        "status": "succeeded",
        "created": 1767225600,
        "livemode": False,
        "paid": True,
        "captured": True,
        "refunded": False,
        "amount_refunded": 0,
        "metadata": {},
        "payment_method": "pm_1LeadFlowCard",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(
            client, stripe_endpoint, stripe_event("payment_intent.succeeded", intent, event_id="evt_recharge1")
        )
    assert response.status_code == 200, response.content
    assert _balance(buyer) == Decimal("75.00")
    assert WalletTopUp.objects.unscoped().get(buyer=buyer).status == "paid"


def test_a_declined_off_session_charge_fails_and_alerts(saved_card, stripe_api, django_capture_on_commit_callbacks):
    _organization, owner, buyer = saved_card
    stripe_api.route(
        "POST",
        "/v1/payment_intents",
        (
            402,
            {
                "error": {
                    "type": "card_error",
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "message": "Your card was declined. This transaction requires authentication.",
                    "payment_intent": stripe_payment_intent(
                        "pi_LeadFlowDeclined",
                        amount=7500,
                        customer="cus_LeadFlowBuyer",
                        metadata={},
                        status="requires_payment_method",
                    ),
                }
            },
        ),
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = wallet_recharge_charge(buyer=buyer, amount=Decimal("75"), idempotency_key="low-balance-8")
    assert result.failed and "requires authentication" in result.error
    top_up = WalletTopUp.objects.unscoped().get(buyer=buyer)
    assert (top_up.status, top_up.provider_reference) == ("failed", "pi_LeadFlowDeclined")
    assert _balance(buyer) == 0
    assert [m.to for m in mail.outbox if m.subject.startswith("Auto-recharge failed")] == [[owner.email]]
    # Asking again with the same key does not charge again; it reports the failure.
    assert wallet_recharge_charge(buyer=buyer, amount=Decimal("75"), idempotency_key="low-balance-8").failed
    assert len(stripe_api.calls("POST", "/v1/payment_intents")) == 1
