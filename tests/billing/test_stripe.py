"""Stripe, checkout first: the public pricing page → Stripe Checkout (a stand-in API) → checkout.session.completed
through dj-stripe's signed webhook endpoint → a user, organization and active subscription, a welcome email with a
one-time sign-in link, and onboarding prefilled from the checkout. Then the subscription's lifecycle events."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from django.core import mail
from djstripe.models import Event as DjstripeEvent

from accounts.models import Membership, User
from billing.models import BillingEvent, Invoice, PlanCheckout, Subscription

from .conftest import (
    STRIPE_WEBHOOK_SECRET,
    post_stripe,
    stripe_account,
    stripe_checkout_session,
    stripe_customer,
    stripe_event,
    stripe_invoice,
    stripe_price,
    stripe_product,
    stripe_sign,
    stripe_subscription,
)

pytestmark = pytest.mark.django_db

PRICE_ID = "price_1LeadFlowGrowthUSD"
SESSION_ID = "cs_test_a1LeadFlowSignup"
CUSTOMER_ID = "cus_LeadFlowAsha01"
SUB_ID = "sub_1LeadFlowAsha01"
EMAIL = "asha@brightsolar.example"


@pytest.fixture
def stripe_checkout_api(stripe_api):
    """Stripe as LeadFlow and dj-stripe call it: prices, Checkout sessions, and the objects dj-stripe re-reads."""
    stripe_api.route("GET", "/v1/account", stripe_account())
    stripe_api.route(
        "POST",
        "/v1/prices",
        lambda recorded, match: stripe_price(
            PRICE_ID, unit_amount=int(recorded.form()["unit_amount"]), currency=recorded.form()["currency"]
        ),
    )

    def create_session(recorded, match):
        form = recorded.form()
        metadata = {key[len("metadata[") : -1]: value for key, value in form.items() if key.startswith("metadata[")}
        session = stripe_checkout_session(
            SESSION_ID,
            mode="subscription",
            customer=None,
            email=form["customer_email"],
            metadata=metadata,
            amount_total=4900,
            client_reference_id=form["client_reference_id"],
        )
        session.update(
            {"status": "open", "payment_status": "unpaid", "url": f"https://checkout.stripe.com/c/pay/{SESSION_ID}"}
        )
        return session

    stripe_api.route("POST", "/v1/checkout/sessions", create_session)
    stripe_api.objects[PRICE_ID] = stripe_price(PRICE_ID, unit_amount=4900)
    stripe_api.objects["prod_LeadFlowGrowth"] = stripe_product()
    stripe_api.objects[CUSTOMER_ID] = stripe_customer(CUSTOMER_ID, EMAIL)
    return stripe_api


def _complete(stripe_api, checkout):
    """What Stripe holds once the payer finished: the completed session and its subscription."""
    metadata = {"checkout_token": checkout.token, "plan": "growth", "interval": "monthly"}
    session = stripe_checkout_session(
        SESSION_ID,
        mode="subscription",
        customer=CUSTOMER_ID,
        email=EMAIL,
        metadata=metadata,
        subscription=SUB_ID,
        amount_total=4900,
        client_reference_id=checkout.token,
    )
    stripe_api.objects[SESSION_ID] = session
    stripe_api.objects[SUB_ID] = stripe_subscription(
        SUB_ID, customer=CUSTOMER_ID, price=stripe_api.objects[PRICE_ID], metadata=metadata
    )
    return session


def _start_signup(client):
    response = client.post(
        "/pricing/",
        {
            "plan": "growth",
            "interval": "monthly",
            "currency": "USD",
            "email": EMAIL,
            "name": "Bright Solar",
            "country": "US",
            "tax_id": "",
        },
    )
    return response, PlanCheckout.objects.unscoped().get(email=EMAIL)


@pytest.fixture
def signup(client, plans, stripe_checkout_api, stripe_endpoint):
    response, checkout = _start_signup(client)
    assert response.status_code == 302 and response["Location"] == f"https://checkout.stripe.com/c/pay/{SESSION_ID}"
    return checkout


def test_pricing_page_sends_the_buyer_to_stripe_checkout_with_the_plan(client, signup, stripe_checkout_api):
    price_call = stripe_checkout_api.calls("POST", "/v1/prices")[0].form()
    # Growth in USD, no VAT id and no VAT rate configured: 49.00 → 4900 cents a month.
    assert price_call["unit_amount"] == "4900" and price_call["recurring[interval]"] == "month"
    session_call = stripe_checkout_api.calls("POST", "/v1/checkout/sessions")[0]
    form = session_call.form()
    assert form["mode"] == "subscription" and form["line_items[0][price]"] == PRICE_ID
    assert form["customer_email"] == EMAIL and form["metadata[checkout_token]"] == signup.token
    assert session_call.headers["Authorization"].startswith("Bearer sk_test_")
    assert signup.details == {"name": "Bright Solar", "country": "US"}
    assert not User.objects.filter(email=EMAIL).exists()


def test_checkout_completed_creates_the_account_and_the_sign_in_link_lands_on_prefilled_onboarding(
    client, signup, stripe_checkout_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    session = _complete(stripe_checkout_api, signup)
    body = stripe_event("checkout.session.completed", session, event_id="evt_1LeadFlowCompleted")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(client, stripe_endpoint, body)
    assert response.status_code == 200, response.content
    # dj-stripe re-read the session from the API before its signal reached LeadFlow.
    assert stripe_checkout_api.calls("GET", f"/v1/checkout/sessions/{SESSION_ID}")

    user = User.objects.get(email=EMAIL)
    assert not user.has_usable_password()
    membership = Membership.objects.unscoped().select_related("organization").get(user=user)
    organization = membership.organization
    assert (membership.role, organization.name, str(organization.country), organization.currency) == (
        "owner",
        "Bright Solar",
        "US",
        "USD",
    )
    subscription = Subscription.objects.unscoped().get(organization=organization)
    assert (subscription.status, subscription.plan.code, subscription.provider) == ("active", "growth", "stripe")
    assert (subscription.provider_subscription_id, subscription.provider_customer_id) == (SUB_ID, CUSTOMER_ID)
    assert BillingEvent.objects.unscoped().get().status == "processed"

    welcome = [m for m in mail.outbox if m.subject.startswith("Welcome to LeadFlow")]
    assert len(welcome) == 1 and welcome[0].to == [EMAIL]  # ours only, not the generic one as well
    link = re.search(r"http://\S+/billing/sign-in/(\S+)/", welcome[0].body)
    assert link, welcome[0].body
    path = link.group(0).split("localhost:8000", 1)[-1]

    client.logout()
    assert b"Sign in as" in client.get(path).content
    signed_in = client.post(path)
    assert signed_in.status_code == 302 and signed_in["Location"] == "/billing/welcome/"
    onboarding = client.get("/billing/welcome/")
    assert onboarding.status_code == 200
    assert 'value="Bright Solar"' in onboarding.content.decode()
    # The link worked once.
    client.logout()
    assert client.post(path).status_code == 302
    assert "_auth_user_id" not in client.session


def test_the_same_event_delivered_twice_is_applied_once(
    client, signup, stripe_checkout_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    body = stripe_event("checkout.session.completed", _complete(stripe_checkout_api, signup), event_id="evt_twice")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_stripe(client, stripe_endpoint, body).status_code == 200
        assert post_stripe(client, stripe_endpoint, body).status_code == 200
    assert DjstripeEvent.objects.filter(id="evt_twice").count() == 1
    assert BillingEvent.objects.unscoped().count() == 1
    assert User.objects.filter(email=EMAIL).count() == 1
    assert len([m for m in mail.outbox if m.subject.startswith("Welcome to LeadFlow")]) == 1


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(lambda body: stripe_sign(body.replace(b"4900", b"1")), id="tampered"),
        pytest.param(lambda body: stripe_sign(body, timestamp=int(time.time()) - 600), id="stale-timestamp"),
        pytest.param(lambda body: stripe_sign(body, secret="whsec_someoneelse"), id="wrong-secret"),
        pytest.param(lambda body: "t=1,v1=deadbeef", id="garbage"),
    ],
)
def test_bad_signatures_are_refused_before_anything_is_applied(
    client, signup, stripe_checkout_api, stripe_endpoint, signature
):
    body = stripe_event("checkout.session.completed", _complete(stripe_checkout_api, signup), event_id="evt_forged")
    assert post_stripe(client, stripe_endpoint, body, signature=signature(body)).status_code == 400
    assert not DjstripeEvent.objects.exists() and not BillingEvent.objects.unscoped().exists()
    assert not User.objects.filter(email=EMAIL).exists()


def test_a_rotated_secret_still_verifies_with_either_signature(client, signup, stripe_checkout_api, stripe_endpoint):
    body = stripe_event("checkout.session.completed", _complete(stripe_checkout_api, signup), event_id="evt_rotated")
    old = stripe_sign(body, secret="whsec_previous")
    current = stripe_sign(body, secret=STRIPE_WEBHOOK_SECRET)
    header = f"{old},v1={current.split('v1=')[1]}"
    assert post_stripe(client, stripe_endpoint, body, signature=header).status_code == 200


def test_missing_signature_or_unknown_endpoint(client, stripe_endpoint):
    body = stripe_event("invoice.paid", {"id": "in_x", "object": "invoice"}, event_id="evt_nosig")
    assert (
        client.post(
            f"/stripe/webhook/{stripe_endpoint.djstripe_uuid}/", data=body, content_type="application/json"
        ).status_code
        == 400
    )
    assert (
        post_stripe(
            client, type("E", (), {"djstripe_uuid": "00000000-0000-0000-0000-000000000000"})(), body
        ).status_code
        == 404
    )


@pytest.fixture
def active(client, signup, stripe_checkout_api, stripe_endpoint, django_capture_on_commit_callbacks):
    body = stripe_event("checkout.session.completed", _complete(stripe_checkout_api, signup), event_id="evt_done")
    created = stripe_event("customer.subscription.created", stripe_checkout_api.objects[SUB_ID], event_id="evt_created")
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(client, stripe_endpoint, body)
        post_stripe(client, stripe_endpoint, created)
    subscription = Subscription.objects.unscoped().get(provider_subscription_id=SUB_ID)
    assert subscription.current_period_end.timestamp() == 1769904000  # from the subscription's items
    return subscription


def _deliver(client, endpoint, stripe_api, capture, event_type, obj, event_id, created):
    if obj.get("object") in ("subscription", "invoice"):
        stripe_api.objects[obj["id"]] = obj
    with capture(execute=True):
        response = post_stripe(client, endpoint, stripe_event(event_type, obj, event_id=event_id, created=created))
    assert response.status_code == 200, response.content


def test_invoices_and_status_changes_are_mirrored_and_late_events_ignored(
    client, active, stripe_checkout_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    api, capture = stripe_checkout_api, django_capture_on_commit_callbacks
    price = api.objects[PRICE_ID]
    now = int(time.time())
    invoice = stripe_invoice("in_1LeadFlow0001", customer=CUSTOMER_ID, subscription=SUB_ID, amount=4900)
    _deliver(client, stripe_endpoint, api, capture, "invoice.paid", invoice, "evt_inv1", now)
    ours = Invoice.objects.unscoped().get(provider_reference="in_1LeadFlow0001")
    assert (ours.total, ours.tax_kind, ours.currency, ours.organization_id) == (
        Decimal("49.00"),
        "none",
        "USD",
        active.organization_id,
    )

    past_due = stripe_subscription(SUB_ID, customer=CUSTOMER_ID, price=price, status="past_due")
    _deliver(client, stripe_endpoint, api, capture, "customer.subscription.updated", past_due, "evt_pd", now + 10)
    active.refresh_from_db()
    assert active.status == "past_due"
    # An "active" update produced earlier but delivered now changes nothing.
    stale = stripe_subscription(SUB_ID, customer=CUSTOMER_ID, price=price, status="active")
    _deliver(client, stripe_endpoint, api, capture, "customer.subscription.updated", stale, "evt_stale", now + 5)
    active.refresh_from_db()
    assert active.status == "past_due"
    assert BillingEvent.objects.unscoped().get(event_id="evt_stale").status == "ignored"

    second = stripe_invoice(
        "in_1LeadFlow0002", customer=CUSTOMER_ID, subscription=SUB_ID, amount=4900, start=1769904000, end=1772323200
    )
    _deliver(client, stripe_endpoint, api, capture, "invoice.paid", second, "evt_inv2", now + 20)
    active.refresh_from_db()
    assert active.status == "active"

    ending = stripe_subscription(SUB_ID, customer=CUSTOMER_ID, price=price, cancel_at_period_end=True)
    _deliver(client, stripe_endpoint, api, capture, "customer.subscription.updated", ending, "evt_end", now + 30)
    active.refresh_from_db()
    assert active.cancel_at_period_end and active.status == "active"
    ended = stripe_subscription(SUB_ID, customer=CUSTOMER_ID, price=price, status="canceled")
    _deliver(client, stripe_endpoint, api, capture, "customer.subscription.deleted", ended, "evt_del", now + 40)
    active.refresh_from_db()
    assert active.status == "cancelled"


def test_the_customer_portal_link(client, active, stripe_checkout_api):
    stripe_checkout_api.route(
        "POST",
        "/v1/billing_portal/sessions",
        lambda recorded, match: {
            "id": "bps_1LeadFlow",
            "object": "billing_portal.session",
            "customer": recorded.form()["customer"],
            "livemode": False,
            "return_url": recorded.form()["return_url"],
            "url": "https://billing.stripe.com/p/session/test_LeadFlow",
        },
    )
    owner = User.objects.get(email=EMAIL)
    client.force_login(owner)
    response = client.post("/billing/portal/")
    assert response.status_code == 302 and response["Location"] == "https://billing.stripe.com/p/session/test_LeadFlow"
    assert stripe_checkout_api.calls("POST", "/v1/billing_portal/sessions")[0].form()["customer"] == CUSTOMER_ID


def test_the_first_invoice_arriving_before_the_checkout_completes_it(
    client, signup, stripe_checkout_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    """Stripe does not order its events: invoice.paid can beat checkout.session.completed. The checkout token in
    the subscription's metadata links it, and the late checkout event then changes nothing."""
    session = _complete(stripe_checkout_api, signup)
    invoice = stripe_invoice("in_1LeadFlowFirst", customer=CUSTOMER_ID, subscription=SUB_ID, amount=4900)
    invoice["parent"]["subscription_details"]["metadata"] = stripe_checkout_api.objects[SUB_ID]["metadata"]
    stripe_checkout_api.objects["in_1LeadFlowFirst"] = invoice
    now = int(time.time())
    with django_capture_on_commit_callbacks(execute=True):
        first = post_stripe(
            client, stripe_endpoint, stripe_event("invoice.paid", invoice, event_id="evt_inv_first", created=now)
        )
    assert first.status_code == 200, first.content
    subscription = Subscription.objects.unscoped().get(provider_subscription_id=SUB_ID)
    assert subscription.status == "active"
    assert Invoice.objects.unscoped().filter(organization=subscription.organization).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(
            client,
            stripe_endpoint,
            stripe_event("checkout.session.completed", session, event_id="evt_late_checkout", created=now - 5),
        )
    assert User.objects.filter(email=EMAIL).count() == 1
    assert Subscription.objects.unscoped().filter(provider_subscription_id=SUB_ID).count() == 1
    assert len([m for m in mail.outbox if m.subject.startswith("Welcome to LeadFlow")]) == 1


def test_upgrade_is_prorated_downgrade_waits_and_cancel_stops_at_period_end(
    client, active, stripe_checkout_api, stripe_endpoint, django_capture_on_commit_callbacks
):
    api = stripe_checkout_api
    prices = iter(["price_1LeadFlowAgencyUSD", "price_1LeadFlowStarterUSD"])
    api.route(
        "POST",
        "/v1/prices",
        lambda recorded, match: stripe_price(next(prices), unit_amount=int(recorded.form()["unit_amount"])),
    )
    api.route(
        "POST",
        f"/v1/subscriptions/{SUB_ID}",
        lambda recorded, match: {
            **api.objects[SUB_ID],
            "cancel_at_period_end": recorded.form().get("cancel_at_period_end") == "true",
        },
    )
    client.force_login(User.objects.get(email=EMAIL))

    client.post("/billing/plan/", {"plan": "agency"})
    upgrade = api.calls("POST", f"/v1/subscriptions/{SUB_ID}")[-1].form()
    assert upgrade["items[0][id]"] == f"si_{SUB_ID[4:]}" and upgrade["items[0][price]"] == "price_1LeadFlowAgencyUSD"
    assert upgrade["proration_behavior"] == "always_invoice"
    active.refresh_from_db()
    assert active.plan.code == "agency"

    client.post("/billing/plan/", {"plan": "starter"})
    downgrade = api.calls("POST", f"/v1/subscriptions/{SUB_ID}")[-1].form()
    assert downgrade["items[0][price]"] == "price_1LeadFlowStarterUSD" and downgrade["proration_behavior"] == "none"
    active.refresh_from_db()
    assert (active.plan.code, active.pending_plan.code) == ("agency", "starter")

    assert client.post("/billing/cancel/").status_code == 302
    assert api.calls("POST", f"/v1/subscriptions/{SUB_ID}")[-1].form() == {"cancel_at_period_end": "true"}
    active.refresh_from_db()
    assert active.cancel_at_period_end and active.status == "active"
    page = client.get("/billing/").content.decode()
    assert "Ends on" in page and "From the next renewal" in page
