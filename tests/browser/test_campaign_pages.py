"""A manager sets up a market on the pages — a category with its field schema, a campaign, a subscribed buyer with
a cap — then a supplier posts two leads over HTTP and the campaign page's live figures catch up when told (the
`campaign.figures` event realtime.js dispatches; the test server has no websocket). Same Chromium and skip rule
as the signup flow test."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from accounts.constants import Role
from campaigns.models import Campaign, Category, LeadSale
from campaigns.services.wallets import wallet_credit
from tests.browser.test_signup_flow import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401 - the fixture
from tests.factories import BuyerFactory, MembershipFactory, OrganizationFactory, UserFactory, make_api_key

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not __import__("os").environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]


@pytest.mark.django_db(transaction=True)
def test_set_up_a_campaign_and_watch_its_figures(live_server, browser_page):  # noqa: F811
    organization = OrganizationFactory(name="Senior Leads")
    manager = UserFactory(email="manager.campaigns@example.com")
    MembershipFactory(organization=organization, user=manager, role=Role.MANAGER)
    buyer = BuyerFactory(organization=organization, name="Golden Years Insurance")
    wallet_credit(buyer=buyer, amount="100.00")
    _, raw_key = make_api_key(organization, scopes=["ingest"])
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", manager.email)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")

    # A category with one required number field, through the schema editor.
    page.get_by_role("link", name="Campaigns").first.click()
    page.get_by_role("link", name="Categories").click()
    page.fill("input[name=name]", "Medicare")
    page.fill("input[name=slug]", "medicare")
    page.fill("input[name=fields-0-name]", "age")
    page.fill("input[name=fields-0-label]", "Age")
    page.select_option("select[name=fields-0-type]", "number")
    page.check("input[name=fields-0-required]")
    page.get_by_role("button", name="Create category").click()
    page.wait_for_url("**/campaigns/categories/*/")
    category = Category.objects.unscoped().get(organization=organization)
    assert category.fields == [{"name": "age", "label": "Age", "type": "number", "required": True}]

    # A campaign in it.
    page.goto(f"{live_server.url}/campaigns/")
    form = page.locator("[data-testid=campaign-create]")
    form.locator("select[name=category]").select_option(str(category.pk))
    form.locator("input[name=name]").fill("Medicare 65+")
    form.locator("input[name=price_per_lead]").fill("12.50")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/campaigns/*/")
    campaign = Campaign.objects.unscoped().get(organization=organization)

    # The buyer subscribes with a cap of one lead a day; a bad weight first shows its error.
    form = page.locator("[data-testid=subscribe-form]")
    form.locator("select[name=buyer]").select_option(str(buyer.pk))
    form.locator("input[name=daily_cap]").fill("1")
    form.locator("input[name=weight]").fill("12")
    form.locator("button[type=submit]").click()
    page.locator(".field-error", has_text="less than or equal to 10").wait_for()
    page.locator("input[name=weight]").fill("1")
    page.locator("[data-testid=subscription-form] button[type=submit]").click()
    page.wait_for_url(f"**/campaigns/{campaign.pk}/")
    assert page.locator("[data-testid=figure-leads]").inner_text() == "0"

    # A supplier posts two leads: the first is sold, the second finds the buyer capped.
    answers = []
    for n in (1, 2):
        response = httpx.post(
            f"{live_server.url}/api/v1/leads/ingest/",
            headers={"X-API-Key": raw_key},
            json={"campaign": campaign.pk, "email": f"senior{n}@example.com", "custom": {"age": 66 + n}},
        )
        assert response.status_code == 201, response.text
        answers.append(response.json()["distribution"])
    assert [a["status"] for a in answers] == ["sold", "unsold"]
    assert answers[0]["sales"] == [{"buyer": buyer.pk, "price": "12.50"}]
    assert answers[1]["reasons"] == {str(buyer.pk): "capped"}

    page.evaluate(
        "id => document.dispatchEvent(new CustomEvent('leadflow:event',"
        " {detail: {event: 'campaign.figures', payload: {campaign_id: id, status: 'unsold', quiet: true}}}))",
        campaign.pk,
    )
    page.wait_for_function("document.querySelector('[data-testid=figure-leads]').innerText === '2'")
    assert page.locator("[data-testid=figure-sold]").inner_text() == "1"
    assert page.locator("[data-testid=figure-revenue]").inner_text() == "12.50"
    assert page.locator("[data-testid=unsold-reasons]").inner_text().startswith("capped")
    assert page.locator("#toasts .toast").count() == 0  # a refresh signal, not news
    page.screenshot(path=str(SCREENSHOTS / "campaign-detail.png"), full_page=True)
    assert LeadSale.objects.unscoped().get().price == Decimal("12.50")
