"""A member opens a support ticket in the app, staff answer it in the admin's thread inline, the member's open
ticket page swaps the answer in when the live event arrives, and the member replies, in headless Chromium. Same
Chromium and skip rule as the signup flow test."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail

from accounts.constants import Role
from support.models import SupportTicket
from tests.browser.test_signup_flow import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401 - the fixture
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not __import__("os").environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]
PASSWORD = "correct horse battery staple"


def _log_in(page, base: str, email: str, *, admin: bool = False) -> None:
    if admin:
        page.goto(f"{base}/admin/login/")
        page.fill("input[name=username]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
    else:
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url("**/dashboard/")


@pytest.mark.django_db(transaction=True)
def test_a_ticket_from_the_app_answered_in_the_admin(live_server, browser_page, settings):  # noqa: F811
    settings.SUPPORT_EMAIL = "help@leadflow.local"
    organization = OrganizationFactory(name="Ticket Realty")
    agent = UserFactory(email="agent.tickets@example.com", first_name="Asha")
    MembershipFactory(organization=organization, user=agent, role=Role.AGENT)
    UserFactory(email="staff.tickets@leadflow.local", first_name="Sam", is_staff=True, is_superuser=True)
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    _log_in(page, live_server.url, agent.email)
    page.locator("nav.side-nav a", has_text="Support").click()
    page.wait_for_url("**/support/")
    page.click("[data-testid=new-ticket]")
    form = page.locator("[data-testid=ticket-form]")
    form.locator("button[type=submit]").click()  # empty: the form says what is missing
    assert page.locator(".field-error").count() == 2
    form = page.locator("[data-testid=ticket-form]")
    form.locator("input[name=subject]").fill("Google Ads leads are missing")
    form.locator("select[name=category]").select_option("integrations")
    form.locator("textarea[name=body]").fill("The form test lead never arrived.")
    form.locator("button[type=submit]").click()
    page.locator("[data-testid=ticket]").wait_for()
    ticket = SupportTicket.objects.unscoped().get()
    assert "Open" in page.locator("[data-testid=ticket-status]").inner_text()
    assert mail.outbox[-1].to == ["help@leadflow.local"]

    staff_page = page.context.browser.new_context().new_page()
    _log_in(staff_page, live_server.url, "staff.tickets@leadflow.local", admin=True)
    staff_page.goto(f"{live_server.url}/admin/support/supportticket/{ticket.pk}/change/")
    assert "The form test lead never arrived." in staff_page.content()
    staff_page.locator("textarea[name='messages-1-body']").fill("The key was rotated: paste the new one in Google Ads.")
    staff_page.click("input[name=_save]")
    staff_page.wait_for_url(f"{live_server.url}/admin/support/supportticket/")
    staff_page.screenshot(path=str(SCREENSHOTS / "support-admin.png"), full_page=True)
    assert mail.outbox[-1].to == [agent.email]

    # The live event (sent over the websocket in production) makes the open page fetch the thread again.
    page.evaluate(
        "id => document.dispatchEvent(new CustomEvent('leadflow:event', "
        "{detail: {event: 'support.reply', payload: {id: id}}}))",
        ticket.pk,
    )
    staff_message = page.locator("[data-testid=ticket-message][data-from-staff=true]")
    staff_message.wait_for()
    assert "paste the new one" in staff_message.inner_text()
    assert "Sam (LeadFlow support)" in staff_message.inner_text()
    assert "Waiting for you" in page.locator("[data-testid=ticket-status]").inner_text()

    reply = page.locator("[data-testid=reply-form]")
    reply.locator("textarea[name=body]").fill("Done, it works now.")
    reply.locator("button[type=submit]").click()
    page.locator("[data-testid=ticket-message]", has_text="Done, it works now.").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "support-ticket.png"), full_page=True)
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert (
        mail.outbox[-1].to == ["help@leadflow.local"]
        and "Reply: Google Ads leads are missing" in mail.outbox[-1].subject
    )
