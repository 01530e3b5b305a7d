"""Checkout first, in headless Chromium: the public pricing page → the offline provider's checkout → the welcome
email's one-time sign-in link → onboarding prefilled from the checkout → the dashboard on an active plan. Same
Chromium and skip rule as the signup flow test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import mail

from accounts.models import Membership, User
from billing.models import Subscription
from billing.services import plans_seed
from tests.browser.test_signup_flow import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not __import__("os").environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]


@pytest.mark.django_db(transaction=True)
def test_pricing_offline_checkout_sign_in_link_onboarding(live_server, browser_page, settings):  # noqa: F811
    settings.SITE_URL = live_server.url
    settings.BILLING_PROVIDER = "offline"
    plans_seed()
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/pricing/?currency=INR")
    assert "2,999 INR" in page.locator("[data-testid=pricing-plans]").inner_text()
    page.click("[data-testid=choose-growth]")
    form = page.locator("[data-testid=pricing-form]")
    # Submitting without an email shows the form's errors and stays on the page.
    form.locator("input[name=name]").fill("Monsoon Realty")
    form.locator("button[type=submit]").click()
    assert page.locator(".field-error").first.is_visible()
    form = page.locator("[data-testid=pricing-form]")
    form.locator("input[name=email]").fill("founder@monsoon.example")
    form.locator("select[name=country]").select_option("IN")
    form.locator("input[name=tax_id]").fill("27AAPFU0939F1ZV")
    page.screenshot(path=str(SCREENSHOTS / "pricing.png"), full_page=True)
    form.locator("button[type=submit]").click()

    page.wait_for_url("**/billing/offline/checkout/**")
    assert "Growth" in page.inner_text("body") and "2999.00 INR" in page.inner_text("body")
    page.click("[data-testid=offline-pay] button")
    page.locator("[data-testid=checkout-done]").wait_for()
    assert "founder@monsoon.example" in page.inner_text("body")
    assert not page.url.endswith("/dashboard/")  # nobody is signed in by a payment page

    welcome = next(m for m in mail.outbox if m.subject.startswith("Welcome to LeadFlow"))
    assert welcome.to == ["founder@monsoon.example"]
    link = re.search(r"https?://\S+/billing/sign-in/\S+/", welcome.body).group(0)
    page.goto(link)
    page.click("[data-testid=magic-login] button")

    page.wait_for_url("**/billing/welcome/")
    form = page.locator("[data-testid=welcome-form]")
    assert form.locator("input[name=name]").input_value() == "Monsoon Realty"
    assert form.locator("input[name=tax_id]").input_value() == "27AAPFU0939F1ZV"
    assert form.locator("select[name=currency]").input_value() == "INR"
    form.locator("select[name=industry]").select_option("real_estate")
    page.screenshot(path=str(SCREENSHOTS / "checkout-onboarding.png"), full_page=True)
    form.locator("button[type=submit]").click()

    page.wait_for_url("**/dashboard/")
    assert page.locator("[data-testid=org-switcher]").inner_text().strip() == "Monsoon Realty"
    page.goto(f"{live_server.url}/billing/")
    status = page.locator("[data-testid=billing-status]").inner_text()
    assert "Growth" in status and "Active" in status
    # The offline "payment" was invoiced like a provider's first charge: 2,999 + 18 % GST.
    assert "3538.82 INR" in page.locator("[data-testid=invoices]").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "billing-active.png"), full_page=True)

    user = User.objects.get(email="founder@monsoon.example")
    organization = Membership.objects.unscoped().get(user=user, role="owner").organization
    assert organization.industry == "real_estate"
    subscription = Subscription.objects.unscoped().get(organization=organization)
    assert (subscription.status, subscription.plan.code, subscription.provider) == ("active", "growth", "offline")
