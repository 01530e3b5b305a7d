"""A person signs up, finishes onboarding and lands on the dashboard, in headless Chromium.

Needs Debian's `chromium` (`.ci/run` installs it); Playwright drives it through `executable_path`, so no browser
is downloaded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from accounts.models import Membership, User
from billing.models import Subscription, SubscriptionStatus
from billing.services import plans_seed

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", "/tmp/leadflow-screenshots"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the Django ORM calls the test makes are still
    # plain synchronous calls between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_signup_onboarding_dashboard(live_server, browser_page, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    plans_seed()
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=email]", "new.owner@example.com")
    page.fill("input[name=password1]", "A-strong-passphrase-42")
    page.fill("input[name=password2]", "A-strong-passphrase-42")
    page.click("form button[type=submit]")

    page.wait_for_url("**/onboarding/")
    page.screenshot(path=str(SCREENSHOTS / "onboarding-details.png"), full_page=True)
    # Submitting without a business name shows the form's error instead of moving on.
    page.fill("input[name=name]", "")
    page.click("[data-testid=business-form] button[type=submit]")
    assert page.locator(".field-error").first.is_visible()
    page.fill("input[name=name]", "Sunrise Homes")
    page.select_option("select[name=industry]", "real_estate")
    page.select_option("select[name=currency]", "INR")
    page.select_option("select[name=timezone]", "Asia/Kolkata")
    page.click("[data-testid=business-form] button[type=submit]")

    page.wait_for_url("**/onboarding/plan/")
    page.click("label[for=plan-growth]")
    page.screenshot(path=str(SCREENSHOTS / "onboarding-plan.png"), full_page=True)
    page.click("[data-testid=plan-form] button[type=submit]")

    page.wait_for_url("**/dashboard/")
    banner = page.locator("[data-testid=trial-banner]")
    assert "Growth trial" in banner.inner_text()
    assert "14 days left" in banner.inner_text()
    assert page.locator("[data-testid=org-switcher]").inner_text().strip() == "Sunrise Homes"
    nav = page.locator("nav.side-nav").inner_text()
    for label in ("Dashboard", "Billing", "Settings"):
        assert label in nav
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    user = User.objects.get(email="new.owner@example.com")
    membership = Membership.objects.unscoped().get(user=user)
    assert membership.role == "owner"
    assert membership.organization.name == "Sunrise Homes"
    subscription = Subscription.objects.unscoped().get(organization=membership.organization)
    assert subscription.status == SubscriptionStatus.TRIALING
    assert subscription.plan.code == "growth"


@pytest.mark.django_db(transaction=True)
def test_owner_changes_a_role_in_place_with_htmx(live_server, browser_page):
    from accounts.constants import Role
    from tests.conftest import member_of
    from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

    organization = OrganizationFactory(name="Htmx Realty")
    owner = UserFactory(email="owner.htmx@example.com")
    MembershipFactory(organization=organization, user=owner, role=Role.OWNER)
    agent = member_of(organization, Role.AGENT)
    page = browser_page

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", owner.email)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")
    page.goto(f"{live_server.url}/settings/team/")
    row = page.locator(f"#member-{Membership.objects.unscoped().get(user=agent).pk}")
    row.locator("select[name=role]").select_option("manager")
    # htmx swaps the row in place: no page load, a "Saved" mark, and the new role stored.
    row = page.locator(f"#member-{Membership.objects.unscoped().get(user=agent).pk}")
    row.locator(".ok").wait_for()
    assert Membership.objects.unscoped().get(user=agent).role == Role.MANAGER
    page.screenshot(path=str(SCREENSHOTS / "team-role-changed.png"), full_page=True)
