"""Razorpay: the subscription checkout against a stand-in API, the webhook's signature, and the lifecycle events
applied once and in order, whatever order they arrive in."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal

import pytest
from django.core import mail

from accounts.models import AuditEvent
from billing.events import billing_event_process
from billing.models import BillingEvent, Invoice, PlanCheckout, Subscription, SubscriptionStatus

from .conftest import (
    RAZORPAY_KEY_ID,
    RAZORPAY_KEY_SECRET,
    post_razorpay,
    razorpay_event,
    razorpay_payment_entity,
    razorpay_sign,
    razorpay_subscription_entity,
)

pytestmark = pytest.mark.django_db

PLAN_ID = "plan_00000000000001"
SUB_ID = "sub_00000000000001"
# Growth in INR: 2,999.00 before tax; with 18 % GST, 3,538.82 — what Razorpay is asked to charge, in paise.
GROWTH_GROSS_PAISE = 353882


def _stand_in_subscription_api(razorpay_api):
    def create_plan(recorded, match):
        body = recorded.json()
        return {
            "id": PLAN_ID,
            "entity": "plan",
            "interval": body["interval"],
            "period": body["period"],
            "item": {
                "id": "item_00000000000001",
                "active": True,
                **body["item"],
                "unit_amount": body["item"]["amount"],
                "type": "plan",
                "unit": None,
                "tax_inclusive": False,
                "hsn_code": None,
                "sac_code": None,
                "tax_rate": None,
                "tax_id": None,
                "tax_group_id": None,
                "created_at": 1767225000,
                "updated_at": 1767225000,
            },
            "notes": body.get("notes", {}),
            "created_at": 1767225000,
        }

    def create_subscription(recorded, match):
        body = recorded.json()
        entity = razorpay_subscription_entity(
            SUB_ID, plan_id=body["plan_id"], status="created", notes=body["notes"], paid_count=0
        )
        entity.update({"customer_id": None, "current_start": None, "current_end": None})
        return entity

    razorpay_api.route("POST", "/v1/plans", create_plan)
    razorpay_api.route("POST", "/v1/subscriptions", create_subscription)


@pytest.fixture
def subscribed(client, org_owner, razorpay_api):
    """The owner chose Growth monthly on the billing page: a Razorpay plan and subscription exist."""
    organization, owner = org_owner
    _stand_in_subscription_api(razorpay_api)
    client.force_login(owner)
    response = client.post("/billing/subscribe/", {"plan": "growth", "interval": "monthly"})
    checkout = PlanCheckout.objects.unscoped().get(organization=organization)
    assert response.status_code == 302 and response["Location"] == f"/billing/checkout/{checkout.token}/razorpay/"
    return organization, owner, checkout


def _notes(checkout):
    return {
        "checkout_token": checkout.token,
        "plan": "growth",
        "interval": "monthly",
        "organization_id": str(checkout.organization_id),
    }


def _charged(checkout, *, pay_id="pay_00000000000001", created_at=1767225700, start=1767225600, end=1769904000):
    return razorpay_event(
        "subscription.charged",
        created_at=created_at,
        subscription=razorpay_subscription_entity(
            SUB_ID, plan_id=PLAN_ID, notes=_notes(checkout), start=start, end=end
        ),
        payment=razorpay_payment_entity(
            pay_id, amount=GROWTH_GROSS_PAISE, invoice_id="inv_00000000000001", created_at=created_at
        ),
    )


def _lifecycle(kind, checkout, *, created_at, status):
    return razorpay_event(
        kind,
        created_at=created_at,
        subscription=razorpay_subscription_entity(SUB_ID, plan_id=PLAN_ID, status=status, notes=_notes(checkout)),
    )


def test_checkout_creates_the_plan_and_subscription_at_razorpay(client, subscribed, razorpay_api):
    organization, _, checkout = subscribed
    plan_call = razorpay_api.calls("POST", "/v1/plans")[0]
    assert plan_call.json()["item"] == {
        "name": "LeadFlow Growth (monthly)",
        "amount": GROWTH_GROSS_PAISE,
        "currency": "INR",
        "description": "For growing teams that route leads to agents and automate follow-up.",
    }
    assert plan_call.json()["period"] == "monthly"
    # The SDK authenticates with the key id and secret (HTTP basic).
    expected = base64.b64encode(f"{RAZORPAY_KEY_ID}:{RAZORPAY_KEY_SECRET}".encode()).decode()
    assert plan_call.headers["Authorization"] == f"Basic {expected}"
    subscription_call = razorpay_api.calls("POST", "/v1/subscriptions")[0].json()
    assert subscription_call["plan_id"] == PLAN_ID and subscription_call["notes"] == _notes(checkout)
    assert checkout.provider_reference == SUB_ID
    page = client.get(f"/billing/checkout/{checkout.token}/razorpay/")
    assert page.status_code == 200
    assert f'"subscription_id": "{SUB_ID}"' in page.content.decode()
    # Asking for the same plan again reuses the Razorpay plan.
    client.post("/billing/subscribe/", {"plan": "growth", "interval": "monthly"})
    assert len(razorpay_api.calls("POST", "/v1/plans")) == 1
    # Nothing is active until Razorpay says so.
    assert Subscription.objects.unscoped().get(organization=organization).status == SubscriptionStatus.TRIALING


def test_return_signature_is_verified_and_activates_nothing(client, subscribed):
    organization, _, checkout = subscribed
    payment_id = "pay_00000000000009"
    signature = hmac.new(RAZORPAY_KEY_SECRET.encode(), f"{payment_id}|{SUB_ID}".encode(), hashlib.sha256).hexdigest()
    url = f"/billing/checkout/{checkout.token}/razorpay/return/"
    ok = client.post(
        url, {"razorpay_payment_id": payment_id, "razorpay_subscription_id": SUB_ID, "razorpay_signature": signature}
    )
    assert ok.status_code == 200 and b"Thank you" in ok.content
    forged = client.post(
        url, {"razorpay_payment_id": "pay_other", "razorpay_subscription_id": SUB_ID, "razorpay_signature": signature}
    )
    assert forged.status_code == 400
    assert Subscription.objects.unscoped().get(organization=organization).status == SubscriptionStatus.TRIALING


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, sig: (body.replace(b'"amount":353882', b'"amount":1'), sig), id="tampered-body"),
        pytest.param(lambda body, sig: (body, razorpay_sign(body, secret="another-secret")), id="wrong-secret"),
        pytest.param(lambda body, sig: (body, ""), id="missing"),
        pytest.param(lambda body, sig: (body, sig[:-2] + ("00" if sig[-2:] != "00" else "11")), id="altered-signature"),
    ],
)
def test_bad_signatures_are_refused_and_record_nothing(client, subscribed, tamper):
    _, _, checkout = subscribed
    body = _charged(checkout)
    body, signature = tamper(body, razorpay_sign(body))
    response = post_razorpay(client, body, event_id="evt_bad", signature=signature)
    assert response.status_code == 401
    assert response.json()["type"] == "authentication_failed"
    assert not BillingEvent.objects.unscoped().exists()
    assert not Invoice.objects.unscoped().exists()


def test_a_valid_signature_is_accepted_and_the_charge_activates_and_invoices(
    client, subscribed, django_capture_on_commit_callbacks
):
    organization, owner, checkout = subscribed
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_razorpay(client, _charged(checkout), event_id="evt_charged_1")
    assert response.status_code == 200 and response.json() == {"received": True, "duplicate": False}

    subscription = Subscription.objects.unscoped().get(organization=organization)
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert (subscription.provider, subscription.provider_subscription_id) == ("razorpay", SUB_ID)
    assert subscription.provider_customer_id == "cust_JXkRCtKEIlCdcB"
    assert subscription.current_period_end.timestamp() == 1769904000
    invoice = Invoice.objects.unscoped().get(organization=organization)
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("2999.00"),
        Decimal("539.82"),
        Decimal("3538.82"),
    )
    assert invoice.provider_reference == "pay_00000000000001" and invoice.status == "paid"
    assert invoice.sac_code == "998314" and invoice.customer_tax_id == "27AAPFU0939F1ZV"
    # Supplier and customer are both in Maharashtra (27): CGST + SGST, half each.
    assert invoice.tax_split == [("CGST", Decimal("9"), Decimal("269.91")), ("SGST", Decimal("9"), Decimal("269.91"))]
    event = BillingEvent.objects.unscoped().get()
    assert (event.status, event.organization_id) == ("processed", organization.pk)
    assert (
        AuditEvent.objects.unscoped().filter(organization=organization, action="subscription.status_changed").exists()
    )
    subjects = [message.subject for message in mail.outbox]
    assert "Your LeadFlow subscription is active" in subjects
    invoice_mail = next(m for m in mail.outbox if m.subject.startswith(f"Invoice {invoice.number}"))
    assert invoice_mail.to == [owner.email]
    assert invoice_mail.attachments[0][0] == f"{invoice.number}.pdf" and invoice_mail.attachments[0][1][:4] == b"%PDF"


def test_a_duplicate_delivery_and_a_replay_change_nothing_twice(client, subscribed, django_capture_on_commit_callbacks):
    organization, _, checkout = subscribed
    body = _charged(checkout)
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(client, body, event_id="evt_charged_1")
    audits = AuditEvent.objects.unscoped().filter(organization=organization).count()
    with django_capture_on_commit_callbacks(execute=True):
        again = post_razorpay(client, body, event_id="evt_charged_1")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # The admin's replay runs the handler again: still one invoice, no new status change.
    billing_event_process(event_pk=BillingEvent.objects.unscoped().get().pk, force=True)
    assert BillingEvent.objects.unscoped().count() == 1
    assert Invoice.objects.unscoped().count() == 1
    assert AuditEvent.objects.unscoped().filter(organization=organization).count() == audits


def test_events_out_of_order_never_roll_the_status_back(client, subscribed, django_capture_on_commit_callbacks):
    organization, _, checkout = subscribed

    def deliver(body, event_id):
        with django_capture_on_commit_callbacks(execute=True):
            assert post_razorpay(client, body, event_id=event_id).status_code == 200
        return Subscription.objects.unscoped().get(organization=organization)

    assert deliver(_charged(checkout, created_at=1767225700), "evt_1").status == "active"
    # A "pending" produced before that charge, delivered late: ignored.
    late = deliver(_lifecycle("subscription.pending", checkout, created_at=1767225650, status="pending"), "evt_2")
    assert late.status == "active"
    assert BillingEvent.objects.unscoped().get(event_id="evt_2").status == "ignored"
    # The next cycle's charge fails: pending, then halted — past due.
    assert (
        deliver(_lifecycle("subscription.pending", checkout, created_at=1769904100, status="pending"), "evt_3").status
        == "past_due"
    )
    halted = deliver(_lifecycle("subscription.halted", checkout, created_at=1770163300, status="halted"), "evt_4")
    assert halted.status == "past_due" and halted.past_due_since.timestamp() == 1769904100
    # A late copy of an older successful charge is invoiced (once) but does not undo the failure.
    stale = deliver(_charged(checkout, pay_id="pay_00000000000002", created_at=1769000000), "evt_5")
    assert stale.status == "past_due"
    assert Invoice.objects.unscoped().filter(provider_reference="pay_00000000000002").count() == 1
    # The customer pays: active again.
    paid = deliver(
        _charged(checkout, pay_id="pay_00000000000003", created_at=1770200000, start=1769904000, end=1772323200),
        "evt_6",
    )
    assert paid.status == "active" and paid.past_due_since is None


def test_upgrade_now_downgrade_at_cycle_end_and_cancel_at_period_end(
    client, subscribed, razorpay_api, plans, django_capture_on_commit_callbacks
):
    organization, _, checkout = subscribed
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(client, _charged(checkout), event_id="evt_1")
    razorpay_api.route(
        "PATCH",
        f"/v1/subscriptions/{SUB_ID}",
        lambda recorded, match: razorpay_subscription_entity(
            SUB_ID, plan_id=recorded.json()["plan_id"], notes=_notes(checkout)
        ),
    )
    plan_ids = iter(["plan_agency000001", "plan_starter00001"])
    razorpay_api.route(
        "POST", "/v1/plans", lambda recorded, match: {"id": next(plan_ids), "entity": "plan", **recorded.json()}
    )

    client.post("/billing/plan/", {"plan": "agency"})
    upgrade = razorpay_api.calls("PATCH", f"/v1/subscriptions/{SUB_ID}")[-1].json()
    assert upgrade["schedule_change_at"] == "now" and upgrade["plan_id"] == "plan_agency000001"
    subscription = Subscription.objects.unscoped().get(organization=organization)
    assert subscription.plan.code == "agency"

    client.post("/billing/plan/", {"plan": "starter"})
    downgrade = razorpay_api.calls("PATCH", f"/v1/subscriptions/{SUB_ID}")[-1].json()
    assert downgrade["schedule_change_at"] == "cycle_end" and downgrade["plan_id"] == "plan_starter00001"
    subscription.refresh_from_db()
    assert (subscription.plan.code, subscription.pending_plan.code) == ("agency", "starter")
    # At the end of the cycle Razorpay applies it and says so.
    updated = razorpay_event(
        "subscription.updated",
        created_at=1769904000,
        subscription=razorpay_subscription_entity(SUB_ID, plan_id="plan_starter00001", notes=_notes(checkout)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(client, updated, event_id="evt_updated")
    subscription.refresh_from_db()
    assert subscription.plan.code == "starter" and subscription.pending_plan is None

    razorpay_api.route(
        "POST",
        f"/v1/subscriptions/{SUB_ID}/cancel",
        lambda recorded, match: razorpay_subscription_entity(
            SUB_ID, plan_id="plan_starter00001", notes=_notes(checkout)
        ),
    )
    client.post("/billing/cancel/")
    assert razorpay_api.calls("POST", f"/v1/subscriptions/{SUB_ID}/cancel")[-1].json() == {"cancel_at_cycle_end": 1}
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end and subscription.status == "active"
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(
            client,
            _lifecycle("subscription.cancelled", checkout, created_at=1772323200, status="cancelled"),
            event_id="evt_cancelled",
        )
    subscription.refresh_from_db()
    assert subscription.status == "cancelled" and subscription.cancelled_at is not None


def test_after_a_secret_rotation_retries_signed_with_the_old_secret_still_verify(client, subscribed, settings):
    _, _, checkout = subscribed
    settings.RAZORPAY_WEBHOOK_SECRET = "new-webhook-secret,webhook-secret-rzp"
    body = _charged(checkout)
    assert post_razorpay(client, body, event_id="evt_old", signature=razorpay_sign(body)).status_code == 200
    newer = _charged(checkout, pay_id="pay_00000000000005")
    assert (
        post_razorpay(
            client, newer, event_id="evt_new", signature=razorpay_sign(newer, secret="new-webhook-secret")
        ).status_code
        == 200
    )
    settings.RAZORPAY_WEBHOOK_SECRET = "new-webhook-secret"
    assert post_razorpay(client, body, event_id="evt_old2", signature=razorpay_sign(body)).status_code == 401


def test_an_authenticated_mandate_alone_does_not_activate(client, subscribed, django_capture_on_commit_callbacks):
    organization, _, checkout = subscribed
    with django_capture_on_commit_callbacks(execute=True):
        post_razorpay(
            client,
            _lifecycle("subscription.authenticated", checkout, created_at=1767225610, status="authenticated"),
            event_id="evt_auth",
        )
    assert Subscription.objects.unscoped().get(organization=organization).status == "trialing"
    assert BillingEvent.objects.unscoped().get(event_id="evt_auth").status == "ignored"
