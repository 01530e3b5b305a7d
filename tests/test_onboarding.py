"""Sign up, describe the business, pick a plan, land on the dashboard with a trial and a welcome email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.constants import Role
from accounts.models import AuditEvent, Membership, Organization, User
from billing.models import Plan, Subscription, SubscriptionStatus
from billing.services import plans_seed

EMAIL = "founder@example.com"
PASSWORD = "A-strong-passphrase-42"

BUSINESS = {
    "name": "Sunrise Solar",
    "industry": "solar",
    "company_size": "2-10",
    "country": "IN",
    "timezone": "Asia/Kolkata",
    "currency": "INR",
    "default_phone_region": "IN",
    "website": "sunrise.example.com",
    "phone": "+91 98765 43210",
    "address": "12 MG Road, Pune",
    "tax_id": "",
}


@pytest.fixture
def plans(db):
    plans_seed()
    return {plan.code: plan for plan in Plan.objects.all()}


@pytest.fixture
def signed_up(client, plans):
    response = client.post("/accounts/signup/", {"email": EMAIL, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == "/onboarding/"
    return User.objects.get(email=EMAIL)


def test_signup_onboarding_plan_dashboard(client, signed_up, plans, django_capture_on_commit_callbacks, mailoutbox):
    user = signed_up
    assert not Membership.objects.unscoped().filter(user=user).exists()
    # Without a workspace the dashboard sends the new account to onboarding.
    assert client.get("/dashboard/")["Location"] == "/onboarding/"
    mails_before = len(mailoutbox)  # allauth's optional verification email

    response = client.post("/onboarding/", BUSINESS)
    assert response.status_code == 302, response.content[:1000]
    assert response["Location"] == "/onboarding/plan/"
    # Nothing is created before a plan is chosen.
    assert not Organization.objects.filter(name="Sunrise Solar").exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/onboarding/plan/", {"plan": plans["growth"].pk})
    assert response.status_code == 302, response.content[:1000]
    assert response["Location"] == "/dashboard/"

    organization = Organization.objects.get(name="Sunrise Solar")
    assert (organization.industry, organization.currency, organization.timezone) == ("solar", "INR", "Asia/Kolkata")
    assert organization.website == "https://sunrise.example.com"
    membership = Membership.objects.unscoped().get(organization=organization)
    assert (membership.user, membership.role) == (user, Role.OWNER)
    user.refresh_from_db()
    assert user.active_organization == organization
    assert client.session["active_organization_id"] == organization.pk

    subscription = Subscription.objects.unscoped().get(organization=organization)
    assert subscription.plan == plans["growth"]
    assert subscription.status == SubscriptionStatus.TRIALING
    assert subscription.currency == "INR"
    expected_end = timezone.now() + timedelta(days=settings.TRIAL_DAYS)
    assert settings.TRIAL_DAYS == 14
    assert abs(subscription.trial_ends_at - expected_end) < timedelta(hours=1)

    assert AuditEvent.objects.unscoped().filter(action="organization.created", organization=organization).exists()

    welcome = [m for m in mailoutbox[mails_before:] if "Welcome to LeadFlow" in m.subject]
    assert len(welcome) == 1
    assert welcome[0].to == [EMAIL]
    assert "Sunrise Solar" in welcome[0].subject
    assert "Growth" in welcome[0].body

    # The onboarding details are gone from the session; a second plan POST cannot create another workspace.
    response = client.post("/onboarding/plan/", {"plan": plans["growth"].pk})
    assert response["Location"] == "/onboarding/"
    assert Organization.objects.filter(name="Sunrise Solar").count() == 1


def test_invalid_business_details_rerender_with_errors(client, signed_up):
    bad = {**BUSINESS, "name": "", "currency": "XXX", "timezone": "Mars/Olympus"}
    response = client.post("/onboarding/", bad)
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) >= {"name", "currency", "timezone"}
    assert not Organization.objects.exists()
    assert "onboarding_business_details" not in client.session
    # Step 2 without step 1 goes back to step 1 and creates nothing.
    response = client.post("/onboarding/plan/", {"plan": Plan.objects.first().pk})
    assert response["Location"] == "/onboarding/"
    assert not Organization.objects.exists()
    assert not Subscription.objects.unscoped().exists()


def test_invalid_plan_rerenders_and_creates_nothing(client, signed_up, plans):
    assert client.post("/onboarding/", BUSINESS).status_code == 302
    response = client.post("/onboarding/plan/", {"plan": 999_999})
    assert response.status_code == 200
    assert "plan" in response.context["form"].errors
    assert not Organization.objects.exists()


def test_onboarding_pages_render(client, signed_up, plans):
    response = client.get("/onboarding/")
    assert response.status_code == 200
    assert b"business-form" in response.content
    assert client.post("/onboarding/", BUSINESS).status_code == 302
    response = client.get("/onboarding/plan/")
    assert response.status_code == 200
    assert b"Growth" in response.content


def test_onboarding_needs_a_signed_in_user(client, plans):
    response = client.post("/onboarding/", BUSINESS)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Organization.objects.exists()
