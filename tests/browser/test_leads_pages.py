"""A manager searches the lead list (an htmx swap, no page load) and drags a card across the board, in headless
Chromium. Same Chromium and skip rule as the signup flow test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from accounts.constants import Role
from leads.models import Lead, PipelineStage
from tests.browser.test_signup_flow import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401 - the fixture
from tests.factories import LeadFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not __import__("os").environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.django_db(transaction=True)
def test_search_the_list_then_drag_a_card_on_the_board(live_server, browser_page):  # noqa: F811
    organization = OrganizationFactory(name="Board Realty")
    manager = UserFactory(email="manager.board@example.com")
    MembershipFactory(organization=organization, user=manager, role=Role.MANAGER)
    meena = LeadFactory(organization=organization, full_name="Meena Iyer", email="meena@example.com")
    ravi = LeadFactory(organization=organization, full_name="Ravi Kumar", email="ravi@example.com")
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", manager.email)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")

    page.goto(f"{live_server.url}/leads/")
    page.locator(f"#lead-{ravi.pk}").wait_for()
    # A lead arriving while the first, unfiltered page is open is fetched and put on top (the event is what
    # realtime.js dispatches for a websocket message; the test server has no websocket).
    arrived = LeadFactory(organization=organization, full_name="Nina Live")
    page.evaluate(
        "id => document.dispatchEvent(new CustomEvent('leadflow:event',"
        " {detail: {event: 'lead.created', payload: {id: id, owner_id: null}}}))",
        arrived.pk,
    )
    page.locator(f"tbody tr.is-new#lead-{arrived.pk}").wait_for()
    assert page.locator("tbody tr").first.get_attribute("id") == f"lead-{arrived.pk}"
    # A marker on the window survives an htmx swap but not a page load.
    page.evaluate("window.__sameDocument = true")
    page.fill("input[name=q]", "meena")
    page.locator(f"#lead-{ravi.pk}").wait_for(state="detached")
    assert page.locator(f"#lead-{meena.pk}").is_visible()
    assert page.evaluate("window.__sameDocument === true")
    page.wait_for_url("**/leads/?*q=meena*")  # hx-push-url keeps the filter in the address bar
    page.screenshot(path=str(SCREENSHOTS / "leads-search.png"), full_page=True)

    page.goto(f"{live_server.url}/leads/board/")
    card = page.locator(f"#card-{ravi.pk}")
    qualified = page.locator("[data-testid=column-qualified]")
    assert page.locator("[data-testid=column-new]").locator(f"#card-{ravi.pk}").count() == 1
    card.drag_to(qualified.locator(".board-cards"))
    qualified.locator(f"#card-{ravi.pk}").wait_for()
    page.wait_for_function(f"!document.querySelector('#card-{ravi.pk}').classList.contains('is-saving')")
    target = PipelineStage.objects.unscoped().get(organization=organization, name="Qualified")
    assert _wait_for(lambda: Lead.objects.unscoped().get(pk=ravi.pk).stage_id == target.pk)
    assert page.locator("[data-testid=board-error]").is_hidden()
    assert qualified.locator("[data-count]").inner_text() == "1"
    page.screenshot(path=str(SCREENSHOTS / "leads-board.png"), full_page=True)

    # When the server refuses (here: the lead was deleted meanwhile), the card goes back and the error shows.
    Lead.objects.unscoped().filter(pk=meena.pk).delete()
    page.locator(f"#card-{meena.pk}").drag_to(page.locator("[data-testid=column-proposal] .board-cards"))
    page.locator("[data-testid=board-error]").wait_for(state="visible")
    assert page.locator("[data-testid=column-new]").locator(f"#card-{meena.pk}").count() == 1
    assert page.locator("[data-testid=column-proposal]").locator(f"#card-{meena.pk}").count() == 0
