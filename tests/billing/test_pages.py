"""Billing pages, the API and the operators' revenue view: what each shows, who may see it, and other tenants'
rows answering 404."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.constants import Role
from billing.models import Refund, Subscription
from leads.models import MonthlyLeadUsage
from leads.services.quota import month_start
from tests.factories import (
    InvoiceFactory,
    OrganizationFactory,
    PlanFactory,
    PlanPriceFactory,
    SubscriptionFactory,
    UserFactory,
    WalletTopUpFactory,
)

from .conftest import member

pytestmark = pytest.mark.django_db


def test_billing_page_shows_plan_trial_usage_invoices_and_changes(client, org_owner):
    organization, owner = org_owner
    MonthlyLeadUsage.objects.unscoped().create(
        organization=organization, month=month_start(organization), lead_count=2500
    )
    invoice = InvoiceFactory(organization=organization)
    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    assert "Growth" in page and "14 days left" in page
    assert "Leads this month: <strong>2,500</strong>" in page and "of 10,000" in page
    assert invoice.number in page and f"/billing/invoices/{invoice.pk}/pdf/" in page
    assert 'data-testid="subscribe-form"' in page and "Cancel subscription" in page
    pdf = client.get(f"/billing/invoices/{invoice.pk}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_subscribe_form_errors_are_shown(client, org_owner):
    _, owner = org_owner
    client.force_login(owner)
    response = client.post("/billing/subscribe/", {"plan": "nonexistent", "interval": "monthly"})
    assert response.status_code == 400 and b"field-error" in response.content


def test_another_organizations_invoice_and_top_up_are_404(client, org_owner):
    _, owner = org_owner
    theirs = InvoiceFactory(organization=OrganizationFactory())
    their_top_up = WalletTopUpFactory()
    client.force_login(owner)
    assert client.get(f"/billing/invoices/{theirs.pk}/pdf/").status_code == 404
    assert client.get(f"/billing/top-ups/{their_top_up.pk}/").status_code == 404


def test_roles(client, org_owner):
    organization, _ = org_owner
    agent = member(organization, Role.AGENT)
    manager = member(organization, Role.MANAGER)
    admin = member(organization, Role.ADMIN)
    client.force_login(agent)
    assert client.get("/billing/").status_code == 403
    assert client.get("/billing/wallets/").status_code == 403
    client.force_login(manager)
    assert client.get("/billing/wallets/").status_code == 200
    client.force_login(admin)
    assert client.get("/billing/").status_code == 200
    # Only owners pay, change plans or cancel.
    assert client.post("/billing/cancel/").status_code == 403
    assert Subscription.objects.unscoped().get(organization=organization).status == "trialing"


def test_pricing_page_is_public_and_shows_form_errors(client, plans):
    page = client.get("/pricing/?currency=USD&plan=growth")
    assert page.status_code == 200
    text = page.content.decode()
    assert "49 USD" in text and 'data-testid="pricing-form"' in text
    refused = client.post(
        "/pricing/",
        {"plan": "growth", "interval": "monthly", "currency": "USD", "email": "nope", "name": "", "country": "US"},
    )
    assert refused.status_code == 400
    assert refused.content.decode().count("field-error") >= 2


def test_offline_checkout_is_off_when_the_setting_says_so(client, plans, settings):
    settings.BILLING_OFFLINE_CHECKOUT = False
    response = client.post(
        "/pricing/",
        {
            "plan": "growth",
            "interval": "monthly",
            "currency": "INR",
            "email": "a@b.example",
            "name": "Acme",
            "country": "IN",
        },
    )
    assert response.status_code == 400 and b"not set up" in response.content


def test_subscription_api(org_owner, api_client):
    organization, owner = org_owner
    api_client.force_authenticate(owner)
    data = api_client.get("/api/v1/billing/subscription/").json()
    assert (data["plan"], data["status"], data["trial_days_left"]) == ("growth", "trialing", 14)
    viewer = member(organization, Role.VIEWER)
    api_client.force_authenticate(viewer)
    assert api_client.get("/api/v1/billing/subscription/").status_code == 403


def test_invoice_api_lists_tax_lines_and_serves_the_pdf(org_owner, api_client):
    organization, owner = org_owner
    invoice = InvoiceFactory(
        organization=organization, customer_tax_id="27AAPFU0939F1ZV", supplier_tax_id="27AABCL1234F1Z5"
    )
    api_client.force_authenticate(owner)
    listed = api_client.get("/api/v1/billing/invoices/").json()["results"]
    assert [row["number"] for row in listed] == [invoice.number]
    assert listed[0]["tax_lines"] == [
        {"label": "CGST", "rate": "9.00", "amount": "90.00"},
        {"label": "SGST", "rate": "9.00", "amount": "90.00"},
    ]
    assert api_client.get(f"/api/v1/billing/invoices/{invoice.pk}/pdf/").content.startswith(b"%PDF")


def test_top_up_api_creates_a_checkout_and_rejects_foreign_buyers(org_owner, api_client):
    from tests.factories import BuyerFactory

    organization, owner = org_owner
    buyer, foreign = BuyerFactory(organization=organization), BuyerFactory()
    api_client.force_authenticate(owner)
    created = api_client.post("/api/v1/billing/wallet-top-ups/", {"buyer": buyer.pk, "amount": "300.00"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "pending" and body["provider"] == "offline"
    assert body["checkout_url"].startswith("http://testserver/billing/offline/top-up/offline_")
    refused = api_client.post("/api/v1/billing/wallet-top-ups/", {"buyer": foreign.pk, "amount": "300.00"})
    assert refused.status_code == 400 and "buyer" in refused.json()["errors"]
    too_small = api_client.post("/api/v1/billing/wallet-top-ups/", {"buyer": buyer.pk, "amount": "0.10"})
    assert too_small.status_code == 400 and "amount" in too_small.json()["errors"]


def test_operators_see_revenue_computed_from_the_data(client, db):
    staff = UserFactory(is_staff=True, is_superuser=True)
    growth = PlanFactory(code="rev-growth")
    PlanPriceFactory(plan=growth, currency="INR", interval="monthly", amount=Decimal("2999.00"))
    PlanPriceFactory(plan=growth, currency="INR", interval="yearly", amount=Decimal("29990.00"))
    PlanPriceFactory(plan=growth, currency="USD", interval="monthly", amount=Decimal("49.00"))
    SubscriptionFactory(plan=growth, status="active", currency="INR", interval="monthly")
    SubscriptionFactory(plan=growth, status="active", currency="INR", interval="yearly")
    SubscriptionFactory(plan=growth, status="active", currency="USD", interval="monthly")
    SubscriptionFactory(plan=growth, status="past_due", currency="INR")
    SubscriptionFactory(
        plan=growth, status="cancelled", currency="INR", cancelled_at=timezone.now() - timedelta(days=3)
    )
    SubscriptionFactory(
        plan=growth, status="cancelled", currency="INR", cancelled_at=timezone.now() - timedelta(days=90)
    )
    paid = InvoiceFactory(total=Decimal("1180.00"))
    Refund.objects.unscoped().create(
        organization=paid.organization,
        provider="razorpay",
        provider_refund_id="rfnd_1",
        amount=Decimal("500.00"),
        currency="INR",
    )
    client.force_login(staff)
    page = client.get("/admin/billing/subscription/revenue/")
    assert page.status_code == 200
    summary = page.context["summary"]
    # 2,999 + 29,990 / 12 (2,499.17) in INR; 49 in USD.
    assert summary["mrr"] == {"INR": Decimal("5498.17"), "USD": Decimal("49.00")}
    assert dict(summary["counts"])["Active"] == 3 and dict(summary["counts"])["Past due"] == 1
    assert summary["churned"] == 1 and summary["churn_rate"] == Decimal("25.0")
    assert [(r["currency"], r["total"]) for r in summary["paid"]] == [("INR", Decimal("1180.00"))]
    assert [(r["currency"], r["total"]) for r in summary["refunds"]] == [("INR", Decimal("500.00"))]
    assert "5498.17" in page.content.decode()
    assert client.get("/admin/billing/subscription/").status_code == 200


def test_a_checkout_for_an_existing_account_adds_the_workspace_without_a_sign_in_link(
    client, plans, django_capture_on_commit_callbacks
):
    from django.core import mail

    from accounts.models import Membership

    existing = UserFactory(email="known@acme.example")
    response = client.post(
        "/pricing/",
        {
            "plan": "starter",
            "interval": "yearly",
            "currency": "INR",
            "email": "Known@Acme.example",
            "name": "Acme Two",
            "country": "IN",
        },
    )
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        client.post(response["Location"])
    membership = Membership.objects.unscoped().select_related("organization").get(user=existing)
    assert (membership.role, membership.organization.name) == ("owner", "Acme Two")
    subscription = Subscription.objects.unscoped().get(organization=membership.organization)
    assert (subscription.status, subscription.interval, subscription.plan.code) == ("active", "yearly", "starter")
    # A year: 9,990 + 18 % GST.
    from billing.models import Invoice

    assert Invoice.objects.unscoped().get(organization=membership.organization).total == Decimal("11788.20")
    welcome = next(m for m in mail.outbox if m.subject.startswith("Welcome to LeadFlow"))
    assert "/accounts/login/?next=/billing/welcome/" in welcome.body and "/billing/sign-in/" not in welcome.body


def test_the_dashboard_warns_when_payment_is_overdue_or_suspended(client, org_owner):
    organization, owner = org_owner
    client.force_login(owner)
    subscription = Subscription.objects.unscoped().get(organization=organization)
    Subscription.objects.unscoped().filter(pk=subscription.pk).update(status="past_due", past_due_since=timezone.now())
    page = client.get("/dashboard/").content.decode()
    assert 'data-testid="billing-banner"' in page and "Payment overdue" in page and "campaigns pause on" in page
    Subscription.objects.unscoped().filter(pk=subscription.pk).update(status="suspended", suspended_at=timezone.now())
    assert "Suspended for non-payment" in client.get("/dashboard/").content.decode()


def test_a_cancelled_workspace_subscribes_again(client, org_owner, django_capture_on_commit_callbacks):
    organization, owner = org_owner
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/billing/cancel/")
    assert Subscription.objects.unscoped().get(organization=organization).status == "cancelled"
    response = client.post("/billing/subscribe/", {"plan": "growth", "interval": "yearly"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(response["Location"])
    subscription = Subscription.objects.unscoped().get(organization=organization)
    assert (subscription.status, subscription.interval, subscription.cancelled_at is not None) == (
        "active",
        "yearly",
        True,
    )
    # Paying again while active is refused: plan changes go through "change plan".
    refused = client.post("/billing/subscribe/", {"plan": "growth", "interval": "yearly"})
    assert refused.status_code == 302  # the offline provider has no provider id: a new checkout is allowed


def test_paying_twice_through_a_provider_is_refused(client, org_owner):
    organization, owner = org_owner
    Subscription.objects.unscoped().filter(organization=organization).update(
        status="active", provider="razorpay", provider_subscription_id="sub_Paying00001"
    )
    client.force_login(owner)
    response = client.post("/billing/subscribe/", {"plan": "growth", "interval": "monthly"})
    assert response.status_code == 400 and b"already paying" in response.content
