"""Provider events beyond the happy path: a handler that fails is kept and retried by beat, the admin replays an
event, refunds are mirrored for revenue, payment failures fail top-ups and alert, the notification channels
(WhatsApp replaceable), and a Razorpay checkout-first signup."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from accounts.models import Membership, User
from billing import tasks
from billing.models import BillingEvent, Refund, Subscription, WalletTopUp
from billing.notifications import Notice, notify_owners
from tests.factories import BuyerFactory, InvoiceFactory, MembershipFactory, OrganizationFactory, UserFactory

from .conftest import (
    post_razorpay,
    post_stripe,
    razorpay_event,
    razorpay_payment_entity,
    razorpay_subscription_entity,
    stripe_account,
    stripe_checkout_session,
    stripe_customer,
    stripe_event,
    stripe_payment_intent,
    stripe_payment_method,
)

pytestmark = pytest.mark.django_db


def test_a_failing_handler_keeps_the_event_and_beat_retries_it(
    client, stripe_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    """Stripe answers 500 while LeadFlow reads the top-up's card: the event is failed, nothing credited; the
    sweep applies it once Stripe answers again."""
    organization = OrganizationFactory(currency="USD", country="US")
    buyer = BuyerFactory(organization=organization)
    top_up = WalletTopUp.objects.unscoped().create(
        organization=organization,
        buyer=buyer,
        amount=Decimal("40"),
        currency="USD",
        provider="stripe",
        save_method=True,
        provider_reference="cs_test_Retry1",
    )
    metadata = {"top_up_id": str(top_up.pk), "buyer_id": str(buyer.pk), "organization_id": str(organization.pk)}
    session = stripe_checkout_session(
        "cs_test_Retry1",
        mode="payment",
        customer="cus_Retry",
        email=buyer.email,
        metadata=metadata,
        payment_intent="pi_Retry1",
        amount_total=4000,
    )
    stripe_api.route("GET", "/v1/account", stripe_account())
    stripe_api.objects.update({"cs_test_Retry1": session, "cus_Retry": stripe_customer("cus_Retry", buyer.email)})
    intent = stripe_payment_intent("pi_Retry1", amount=4000, customer="cus_Retry", metadata=metadata)
    # dj-stripe's own read of the PaymentIntent works; LeadFlow's read of its card (expanded) fails.
    stripe_api.route(
        "GET",
        "/v1/payment_intents/pi_Retry1",
        lambda recorded, match: (
            (500, {"error": {"type": "api_error", "message": "Something went wrong."}})
            if recorded.query.get("expand[0]") == ["payment_method"]
            else intent
        ),
    )
    stripe_api.objects["pm_1LeadFlowCard"] = stripe_payment_method(customer="cus_Retry")
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            post_stripe(
                client, stripe_endpoint, stripe_event("checkout.session.completed", session, event_id="evt_retry")
            ).status_code
            == 200
        )
    event = BillingEvent.objects.unscoped().get(event_id="evt_retry")
    assert event.status == "failed" and event.attempts == 1 and "Something went wrong" in event.result
    top_up.refresh_from_db()
    assert top_up.status == "pending"

    stripe_api.route(
        "GET",
        "/v1/payment_intents/pi_Retry1",
        {**intent, "payment_method": stripe_payment_method(customer="cus_Retry")},
    )
    assert tasks.sweep_billing_events() == 1
    event.refresh_from_db()
    top_up.refresh_from_db()
    assert (event.status, event.attempts, top_up.status) == ("processed", 2, "paid")
    assert tasks.sweep_billing_events() == 0


def test_the_admin_replays_an_event(client, stripe_api):
    organization = OrganizationFactory()
    staff = UserFactory(is_staff=True, is_superuser=True)
    event = BillingEvent.objects.unscoped().create(
        provider="razorpay",
        event_id="evt_admin",
        event_type="invoice.paid",
        payload={"event": "invoice.paid", "payload": {}},
        occurred_at="2026-01-01T00:00:00Z",
        organization=organization,
    )
    client.force_login(staff)
    response = client.post("/admin/billing/billingevent/", {"action": "process_again", "_selected_action": [event.pk]})
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.status, event.attempts, event.result) == ("ignored", 1, "invoice.paid needs nothing from LeadFlow")
    assert client.get("/admin/billing/billingevent/").status_code == 200


def test_refunds_are_mirrored_from_both_providers(
    client, razorpay_api, stripe_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    indian = OrganizationFactory()
    InvoiceFactory(organization=indian, provider="razorpay", provider_reference="pay_Refunded1")
    refund = {
        "id": "rfnd_LeadFlow1",
        "entity": "refund",
        "amount": 50000,
        "currency": "INR",
        "payment_id": "pay_Refunded1",
        "notes": [],
        "receipt": None,
        "acquirer_data": {"arn": None},
        "created_at": 1767225600,
        "batch_id": None,
        "status": "processed",
        "speed_processed": "normal",
        "speed_requested": "normal",
    }
    body = razorpay_event(
        "refund.processed",
        created_at=1767225601,
        refund=refund,
        payment=razorpay_payment_entity("pay_Refunded1", amount=353882),
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(client, body, event_id="evt_refund")
        post_razorpay(client, body, event_id="evt_refund")

    american = OrganizationFactory(currency="USD", country="US")
    InvoiceFactory(organization=american, currency="USD", provider="stripe", provider_reference="in_Refunded1")
    charge = {
        "id": "ch_Refunded1",
        "object": "charge",
        "amount": 4900,
        "amount_captured": 4900,
        "amount_refunded": 1500,
        "currency": "usd",
        "customer": "cus_Refund",
        "invoice": "in_Refunded1",
        "payment_intent": "pi_Refunded1",
        "paid": True,
        "captured": True,
        "refunded": False,
        "status": "succeeded",
        "created": 1767225600,
        "livemode": False,
        "metadata": {},
        "payment_method": "pm_1LeadFlowCard",
        "balance_transaction": None,
    }
    stripe_api.route("GET", "/v1/account", stripe_account())
    stripe_api.objects.update({"ch_Refunded1": charge, "cus_Refund": stripe_customer("cus_Refund", "a@b.example")})
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            post_stripe(
                client, stripe_endpoint, stripe_event("charge.refunded", charge, event_id="evt_charge_refunded")
            ).status_code
            == 200
        )
    refunds = {(r.organization_id, r.provider, r.amount, r.currency) for r in Refund.objects.unscoped().all()}
    assert refunds == {
        (indian.pk, "razorpay", Decimal("500.00"), "INR"),
        (american.pk, "stripe", Decimal("15.00"), "USD"),
    }


def test_a_failed_razorpay_payment_fails_its_top_up(client, razorpay_api, django_capture_on_commit_callbacks):
    organization = OrganizationFactory()
    buyer = BuyerFactory(organization=organization)
    top_up = WalletTopUp.objects.unscoped().create(
        organization=organization,
        buyer=buyer,
        amount=Decimal("900"),
        currency="INR",
        provider="razorpay",
        kind="auto_recharge",
        provider_reference="order_Failing1",
        idempotency_key="k1",
    )
    owner = UserFactory()
    MembershipFactory(organization=organization, user=owner, role="owner")
    payment = razorpay_payment_entity(
        "pay_Failed1",
        amount=90000,
        status="failed",
        order_id="order_Failing1",
        error_code="BAD_REQUEST_ERROR",
        error_description="Payment declined by bank",
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(
            client, razorpay_event("payment.failed", created_at=1767225600, payment=payment), event_id="evt_failed"
        )
    top_up.refresh_from_db()
    assert (top_up.status, top_up.error) == ("failed", "Razorpay: Payment declined by bank")
    assert [m.to for m in mail.outbox] == [[owner.email]]


class RecordingChannel:
    sent: list = []

    def send(self, *, organization, recipients, notice):
        RecordingChannel.sent.append((organization.pk, [u.email for u in recipients], notice.subject))
        return len(recipients)


def test_notices_go_to_each_channel_and_whatsapp_is_replaceable(settings):
    organization = OrganizationFactory()
    owner = UserFactory()
    MembershipFactory(organization=organization, user=owner, role="owner")
    MembershipFactory(organization=organization, role="admin")  # not an owner: not told
    notice = Notice("Your LeadFlow payment is overdue", "payment_due", {"subscription": None, "grace_ends_at": None})
    mail.outbox.clear()
    assert notify_owners(organization=organization, notice=notice) == {"email": 1, "whatsapp": 0}
    assert [m.to for m in mail.outbox] == [[owner.email]]
    settings.BILLING_WHATSAPP_CHANNEL = "tests.billing.test_events.RecordingChannel"
    RecordingChannel.sent = []
    assert notify_owners(organization=organization, notice=notice, channels=["whatsapp"]) == {"whatsapp": 1}
    assert RecordingChannel.sent == [(organization.pk, [owner.email], "Your LeadFlow payment is overdue")]


def test_a_razorpay_signup_from_the_pricing_page(client, plans, razorpay_api, django_capture_on_commit_callbacks):
    razorpay_api.route(
        "POST", "/v1/plans", lambda recorded, match: {"id": "plan_Signup000001", "entity": "plan", **recorded.json()}
    )
    razorpay_api.route(
        "POST",
        "/v1/subscriptions",
        lambda recorded, match: {
            **razorpay_subscription_entity(
                "sub_Signup000001",
                plan_id=recorded.json()["plan_id"],
                status="created",
                notes=recorded.json()["notes"],
                paid_count=0,
            ),
            "customer_id": None,
        },
    )
    response = client.post(
        "/pricing/",
        {
            "plan": "starter",
            "interval": "monthly",
            "currency": "INR",
            "email": "new@kirana.example",
            "name": "Kirana Leads",
            "country": "IN",
            "tax_id": "29AAACK1234A1Z5",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("/razorpay/")
    page = client.get(response["Location"]).content.decode()
    assert "sub_Signup000001" in page and "https://rzp.io/i/" in page  # Checkout.js, or the hosted page
    notes = razorpay_api.calls("POST", "/v1/subscriptions")[0].json()["notes"]
    assert "organization_id" not in notes and notes["checkout_token"]
    # 999 + 18 % GST = 1,178.82
    assert razorpay_api.calls("POST", "/v1/plans")[0].json()["item"]["amount"] == 117882
    charged = razorpay_event(
        "subscription.charged",
        created_at=1767225700,
        subscription=razorpay_subscription_entity("sub_Signup000001", plan_id="plan_Signup000001", notes=notes),
        payment=razorpay_payment_entity("pay_Signup000001", amount=117882),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post_razorpay(client, charged, event_id="evt_signup").status_code == 200
    user = User.objects.get(email="new@kirana.example")
    organization = Membership.objects.unscoped().get(user=user).organization
    assert (organization.name, organization.tax_id) == ("Kirana Leads", "29AAACK1234A1Z5")
    subscription = Subscription.objects.unscoped().get(organization=organization)
    assert (subscription.status, subscription.provider_subscription_id) == ("active", "sub_Signup000001")
    assert any("/billing/sign-in/" in m.body for m in mail.outbox if m.to == ["new@kirana.example"])


def test_an_event_whose_task_never_ran_is_applied_by_the_sweep(client, razorpay_api):
    """The broker was down when the webhook was answered: the event waits as received, and beat applies it."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.events import billing_event_record

    organization = OrganizationFactory()
    buyer = BuyerFactory(organization=organization)
    top_up = WalletTopUp.objects.unscoped().create(
        organization=organization,
        buyer=buyer,
        amount=Decimal("100"),
        currency="INR",
        provider="razorpay",
        provider_reference="order_Lost1",
    )
    payment = razorpay_payment_entity("pay_Lost1", amount=10000, order_id="order_Lost1")
    import json

    event, _ = billing_event_record(
        provider="razorpay",
        event_id="evt_lost",
        event_type="payment.captured",
        payload=json.loads(razorpay_event("payment.captured", created_at=1767225600, payment=payment)),
        occurred_at=None,
    )  # no on_commit run: the task was never queued
    assert tasks.sweep_billing_events() == 0  # too recent: its task may still be on its way
    BillingEvent.objects.unscoped().filter(pk=event.pk).update(received_at=timezone.now() - timedelta(minutes=6))
    assert tasks.sweep_billing_events() == 1
    top_up.refresh_from_db()
    assert top_up.status == "paid"
