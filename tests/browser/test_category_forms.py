"""The category's fields in a real browser: on Leads → Add a manager picks a campaign and htmx swaps its fields in;
a bad value shows its error on the field; the lead is sold. Then the campaign's hosted form, built on the
integration page, asks a visitor for the same fields. Same Chromium and skip rule as the signup flow test."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from accounts.constants import Role
from campaigns.models import LeadSale
from campaigns.services.wallets import wallet_credit
from integrations.models import IntegrationConnection
from integrations.services import connections as connection_services
from leads.models import Lead
from tests.browser.test_signup_flow import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401 - the fixture
from tests.factories import (
    BuyerFactory,
    BuyerSubscriptionFactory,
    CampaignFactory,
    CategoryFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not __import__("os").environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]

FIELDS = [
    {"name": "age", "label": "Age", "type": "number", "required": True},
    {"name": "coverage", "label": "Coverage", "type": "choice", "choices": ["basic", "full"], "required": True},
    {"name": "smoker", "label": "Smoker", "type": "boolean"},
    {"name": "birth_date", "label": "Date of birth", "type": "date"},
]


@pytest.mark.django_db(transaction=True)
def test_campaign_fields_on_the_add_page_and_a_hosted_form(live_server, browser_page):  # noqa: F811
    organization = OrganizationFactory(name="Senior Leads")
    owner = UserFactory(email="owner.forms@example.com")
    MembershipFactory(organization=organization, user=owner, role=Role.OWNER)
    category = CategoryFactory(organization=organization, name="Medicare", fields=FIELDS)
    campaign = CampaignFactory(organization=organization, category=category, name="Medicare 65+")
    buyer = BuyerFactory(organization=organization, name="Golden Years Insurance")
    wallet_credit(buyer=buyer, amount="100.00")
    BuyerSubscriptionFactory(organization=organization, buyer=buyer, campaign=campaign)
    CampaignFactory(organization=OrganizationFactory(), name="Someone else's campaign")
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", owner.email)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")

    # Leads → Add: choosing the campaign swaps its fields in.
    page.goto(f"{live_server.url}/leads/new/")
    options = page.locator("select[name=campaign] option").all_inner_texts()
    assert "Medicare 65+" in options and "Someone else's campaign" not in options
    assert page.locator("input[name=custom-age]").count() == 0
    page.select_option("select[name=campaign]", str(campaign.pk))
    page.locator("#category-fields legend", has_text="Medicare").wait_for()
    assert page.locator("input[name=custom-age]").get_attribute("type") == "number"
    assert page.locator("select[name=custom-coverage]").is_visible()
    assert page.locator("input[name=custom-smoker]").get_attribute("type") == "checkbox"
    assert page.locator("input[name=custom-birth_date]").get_attribute("type") == "date"
    assert page.locator("#category-fields .req").count() == 2
    page.fill("input[name=full_name]", "Mira Shah")
    page.fill("input[name=phone]", "98123 45678")
    page.get_by_role("button", name="Add lead").click()
    page.locator("#category-fields .field-error").first.wait_for()
    page.screenshot(path=str(SCREENSHOTS / "lead-add-category-errors.png"), full_page=True)
    assert page.locator("[data-field=age] .field-error").inner_text() == "This field is required."
    page.fill("input[name=custom-age]", "71")
    page.select_option("select[name=custom-coverage]", "full")
    page.check("input[name=custom-smoker]")
    page.get_by_role("button", name="Add lead").click()
    page.wait_for_url("**/leads/*/")
    assert "Sold to 1 buyer" in page.content()
    lead = Lead.objects.unscoped().get(organization=organization)
    assert lead.custom == {"age": 71, "coverage": "full", "smoker": True}
    assert LeadSale.objects.unscoped().get(lead=lead).price == Decimal("10.00")

    # A hosted form tied to the campaign, built on its integration page.
    form = connection_services.connection_create(organization=organization, provider="form", name="Quote form")
    page.goto(f"{live_server.url}/integrations/connections/{form.pk}/")
    settings = page.locator("[data-testid=hosted-form-settings]")
    settings.locator("input[name=title]").fill("Get a Medicare quote")
    settings.locator("select[name=campaign]").select_option(str(campaign.pk))
    page.locator("#hosted-form-category-fields", has_text="Always asked").wait_for()
    settings.locator("input[name=category_fields][value=birth_date]").check()
    settings.get_by_role("button", name="Save form").click()
    page.locator(".flash", has_text="Form saved").wait_for()
    form = IntegrationConnection.objects.unscoped().get(pk=form.pk)
    assert form.settings["campaign_id"] == campaign.pk and form.settings["category_fields"] == ["birth_date"]

    page.goto(f"{live_server.url}/integrations/f/{form.public_token}/")
    assert page.locator("input[name=custom-birth_date]").is_visible()
    assert page.locator("input[name=custom-smoker]").count() == 0  # not picked by the builder
    page.fill("input[name=full_name]", "Ravi Iyer")
    page.fill("input[name=phone]", "98123 45670")
    page.fill("input[name=custom-age]", "70")
    page.get_by_role("button", name="Send").click()
    page.locator("[data-field=coverage] .field-error").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "hosted-form-category-errors.png"), full_page=True)
    page.select_option("select[name=custom-coverage]", "basic")
    page.fill("input[name=custom-birth_date]", "1956-03-09")
    page.get_by_role("button", name="Send").click()
    page.locator("[data-testid=form-thanks]").wait_for()
    visitor_lead = Lead.objects.unscoped().get(organization=organization, source="form")
    assert visitor_lead.custom == {"age": 70, "coverage": "basic", "birth_date": "1956-03-09"}
    assert LeadSale.objects.unscoped().filter(lead=visitor_lead).exists()
