"""The inbox in headless Chromium, served by daphne (HTTP and the websocket) in a child process on the test
database: an agent opens a conversation, a signed Twilio message arrives and shows up live, they reply (Twilio's
stand-in gets it) and mark the thread unread, and the nav badge follows; and a socket that drops makes the page fetch what it missed."""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from django.db import connections
from twilio.request_validator import RequestValidator

from accounts.constants import Role
from messaging.models import Conversation, Message
from messaging.services.channels import messaging_settings_for
from tests.browser.test_signup_flow import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401 - the fixture
from tests.factories import (
    ConversationFactory,
    LeadFactory,
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.messaging.conftest import SMS_NUMBER, TWILIO_SID, TWILIO_TOKEN, inbound_sms, twilio  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it and never skips",
    ),
]

PASSWORD = "correct horse battery staple"


def _application():
    from channels.routing import get_default_application
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler(get_default_application())


@pytest.mark.django_db(transaction=True)
def test_a_message_arrives_live_and_the_agent_replies(browser_page, twilio, settings):  # noqa: F811
    agent, conversation = _agent_with_a_conversation()
    # The server starts after the rows exist: daphne's child reads them from the same database.
    server = _start_daphne(settings)
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        _open_the_conversation(page, server, agent, conversation)
        assert "Hi, I saw your listing." in page.locator("[data-testid=thread]").inner_text()

        _send_signed_sms(server, "Is the 2BHK still available?")
        page.locator("#thread-messages", has_text="Is the 2BHK still available?").wait_for()
        page.screenshot(path=str(SCREENSHOTS / "inbox-live-message.png"), full_page=True)

        page.fill("#reply-form textarea", "Yes! Would you like to visit on Saturday?")
        page.click("#reply-form button[type=submit]")
        page.locator("#thread-messages", has_text="Would you like to visit on Saturday?").wait_for()
        sends = twilio.calls("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
        assert [s.form()["Body"] for s in sends] == ["Yes! Would you like to visit on Saturday?"]
        assert Message.objects.unscoped().filter(direction="out", sent_by=agent).count() == 1

        page.click("[data-testid=mark-unread]")
        page.locator("[data-testid=nav-badge-inbox]", has_text="1").wait_for()
        assert Conversation.objects.unscoped().get(pk=conversation.pk).unread_count == 1
        page.screenshot(path=str(SCREENSHOTS / "inbox-replied.png"), full_page=True)
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_after_its_socket_drops_the_inbox_fetches_the_messages_it_missed(browser_page, twilio, settings):  # noqa: F811
    agent, conversation = _agent_with_a_conversation()
    server = _start_daphne(settings)
    page = browser_page
    # Stand between the page and daphne on the events socket, so the test can lose frames and drop the connection.
    routes, forwarding = [], {"on": True}

    def route(socket):
        upstream = socket.connect_to_server()
        upstream.on_message(lambda frame: socket.send(frame) if forwarding["on"] else None)
        routes.append((socket, upstream))

    page.route_web_socket(re.compile(r"/ws/events/$"), route)
    try:
        _open_the_conversation(page, server, agent, conversation)
        # The socket is down (its frames go nowhere) while a message arrives and is stored.
        forwarding["on"] = False
        _send_signed_sms(server, "Sent while the socket was down")
        assert Message.objects.unscoped().filter(body="Sent while the socket was down").exists()
        assert page.locator("#thread-messages", has_text="Sent while the socket was down").count() == 0

        sockets_before = len(routes)
        socket, upstream = routes[-1]
        forwarding["on"] = True
        upstream.close()
        socket.close(code=1011, reason="gone")
        page.locator("#live-status[data-state=closed]").wait_for()
        page.locator("#live-status[data-state=open]").wait_for()
        assert len(routes) == sockets_before + 1  # a new socket, not the old one come back
        page.locator("#thread-messages", has_text="Sent while the socket was down").wait_for()
        page.locator("[data-testid=conversation-list]", has_text="Sent while the socket was down").wait_for()
    finally:
        server.stop()


def _agent_with_a_conversation():
    organization = OrganizationFactory(name="Live Homes")
    agent = UserFactory(email="agent.inbox@example.com")
    MembershipFactory(organization=organization, user=agent, role=Role.AGENT)
    row = messaging_settings_for(organization.pk)
    row.twilio_sms_from = SMS_NUMBER
    row.save()
    lead = LeadFactory(organization=organization, owner=agent, phone="+919812345678", full_name="Asha Rao")
    conversation = ConversationFactory(
        organization=organization, lead=lead, address=lead.phone, assignee=agent, contact_name="Asha Rao"
    )
    MessageFactory(organization=organization, conversation=conversation, body="Hi, I saw your listing.")
    return agent, conversation


def _open_the_conversation(page, server, agent, conversation) -> None:
    page.goto(f"{server.url}/accounts/login/")
    page.fill("input[name=login]", agent.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/**")
    page.goto(f"{server.url}/inbox/?c={conversation.pk}")
    page.locator("#live-status[data-state=open]").wait_for()


def _send_signed_sms(server, body: str) -> None:
    params = inbound_sms(Body=body)
    path = "/api/webhooks/twilio/messages/"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{server.url}{path}", params)
    response = httpx.post(
        f"{server.url}{path}",
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert response.status_code == 200


class _Daphne:
    def __init__(self, process):
        self.process = process
        self.url = f"http://127.0.0.1:{process.port.value}"

    def stop(self):
        self.process.terminate()
        self.process.join()


def _fresh_child() -> None:
    """In daphne's child: what the parent's async tests left is dropped, so the child makes its own — asgiref's
    thread for thread-sensitive sync calls (forked without its thread, it would never run one) and the channel
    layer (its Redis pools bound to the parent's event loops)."""
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync
    from channels.layers import channel_layers

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    channel_layers.backends.clear()


def _start_daphne(settings) -> _Daphne:
    from daphne.testing import DaphneProcess

    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    connections.close_all()
    process = DaphneProcess("127.0.0.1", partial(_application), setup=_fresh_child)
    process.start()
    assert process.ready.wait(timeout=20), "daphne did not start"
    # Twilio signs the public URL; the child's SITE_URL (read when it forked) is another host, so this also proves
    # the check falls back to the URL the request itself names.
    return _Daphne(process)
