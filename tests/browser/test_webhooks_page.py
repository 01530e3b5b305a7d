"""An admin subscribes a URL to lead events on the Webhooks page, copies the secret shown once, sends a test event
and sees its delivery succeed, in headless Chromium; the receiver checks the Standard Webhooks signature with that
secret. Same Chromium and skip rule as the signup flow test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from accounts.constants import Role
from tests.browser.test_signup_flow import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401 - the fixture
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not __import__("os").environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]


@pytest.fixture
def receiver():
    """A loopback HTTP server that keeps what it is sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/leadflow", received
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_subscribe_a_url_and_watch_a_signed_test_event_arrive(live_server, browser_page, receiver, settings):  # noqa: F811
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    url, received = receiver
    organization = OrganizationFactory(name="Hook Realty")
    admin = UserFactory(email="admin.hooks@example.com")
    MembershipFactory(organization=organization, user=admin, role=Role.ADMIN)
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", admin.email)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard/")

    page.goto(f"{live_server.url}/integrations/webhooks/")
    form = page.locator("[data-testid=webhook-endpoint-form]")
    form.locator("input[name=url]").fill(url)
    form.locator("input[name=description]").fill("Our CRM")
    form.locator("input[type=checkbox][value='lead.created']").check()
    form.locator("button[type=submit]").click()
    secret = page.locator("#webhook-secret").input_value()
    assert secret.startswith("whsec_")

    page.goto(f"{live_server.url}/integrations/webhooks/")
    page.locator("[data-testid=webhook-endpoints] a", has_text="/hooks/leadflow").first.click()
    page.get_by_role("button", name="Send test event").click()
    row = page.locator("[data-testid=webhook-delivery]").first
    row.wait_for()
    row.locator(".status-active").wait_for(timeout=15_000)  # succeeded, after the 2 s refresh at the latest
    page.screenshot(path=str(SCREENSHOTS / "webhooks-detail.png"), full_page=True)

    assert len(received) == 1
    delivery = received[0]
    payload = Webhook(secret).verify(delivery["body"], delivery["headers"])
    assert payload["type"] == json.loads(delivery["body"])["type"]
    assert delivery["headers"]["webhook-signature"].startswith("v1,")
