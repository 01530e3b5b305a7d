"""Support tickets: customers open and answer them on their pages or the API, staff answer in the admin; each side
is emailed after commit, the customer also live; and no member of another organization ever sees a ticket."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from rest_framework.test import APIClient

from accounts.constants import Role
from accounts.models import AuditEvent
from support.models import SupportTicket, TicketMessage
from support.services import ticket_open, ticket_reply_by_staff
from tests.conftest import member_of
from tests.factories import OrganizationFactory, SupportTicketFactory, TicketMessageFactory, UserFactory, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(email="support.agent@leadflow.local", first_name="Sam", is_staff=True, is_superuser=True)


@pytest.fixture
def published(monkeypatch):
    """Live events as they leave after commit: (group, event, payload)."""
    sent: list[tuple[str, str, dict]] = []
    monkeypatch.setattr("leadflow.realtime._send", lambda group, event, payload: sent.append((group, event, payload)))
    return sent


def _admin_reply(client, ticket, body, status=None):
    """Submit the admin's change form the way the browser does: the thread inline with one new message."""
    existing = list(TicketMessage.objects.unscoped().filter(ticket=ticket).order_by("pk"))
    prefix = "messages"
    data = {
        "status": status or ticket.status,
        f"{prefix}-TOTAL_FORMS": str(len(existing) + 1),
        f"{prefix}-INITIAL_FORMS": str(len(existing)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, message in enumerate(existing):
        data[f"{prefix}-{index}-id"] = str(message.pk)
        data[f"{prefix}-{index}-ticket"] = str(ticket.pk)
    data[f"{prefix}-{len(existing)}-body"] = body
    data[f"{prefix}-{len(existing)}-ticket"] = str(ticket.pk)
    return client.post(f"/admin/support/supportticket/{ticket.pk}/change/", data)


def test_a_member_opens_a_ticket_and_staff_are_emailed(client, organization, staff, django_capture_on_commit_callbacks):
    agent = member_of(organization, Role.AGENT)
    client.force_login(agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/support/new/",
            {"subject": "Facebook leads stopped", "category": "integrations", "body": "Nothing since 9 am."},
        )
    ticket = SupportTicket.objects.unscoped().get()
    assert response.status_code == 302 and response["Location"] == f"/support/{ticket.pk}/"
    assert (ticket.organization, ticket.opened_by, ticket.status) == (organization, agent, "open")
    assert [m.body for m in TicketMessage.objects.unscoped().filter(ticket=ticket)] == ["Nothing since 9 am."]
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["support.agent@leadflow.local"]
    assert f"[Support #{ticket.pk}] New ticket: Facebook leads stopped" in email.subject
    assert "Nothing since 9 am." in email.body and f"/admin/support/supportticket/{ticket.pk}/change/" in email.body
    assert AuditEvent.objects.unscoped().filter(action="support.ticket_opened", actor_user=agent).exists()

    page = client.get(f"/support/{ticket.pk}/").content.decode()
    assert "Facebook leads stopped" in page and "Nothing since 9 am." in page


def test_staff_reply_in_the_admin_emails_the_customer_and_is_live(
    client, organization, staff, published, django_capture_on_commit_callbacks, settings
):
    settings.SUPPORT_EMAIL = "help@leadflow.local"
    owner = member_of(organization, Role.OWNER)
    ticket = ticket_open(organization=organization, author=owner, subject="Invoice GSTIN", body="Wrong GSTIN on it.")
    client.force_login(staff)
    page = client.get(f"/admin/support/supportticket/{ticket.pk}/change/")
    assert page.status_code == 200 and "Wrong GSTIN on it." in page.content.decode()
    listing = client.get("/admin/support/supportticket/").content.decode()
    assert "Invoice GSTIN" in listing and "support" in listing  # whose turn: support's
    with django_capture_on_commit_callbacks(execute=True):
        response = _admin_reply(client, ticket, "Fixed: the next invoice carries the new GSTIN.")
    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    staff_message = TicketMessage.objects.unscoped().filter(ticket=ticket, from_staff=True).get()
    assert (staff_message.author, staff_message.body) == (staff, "Fixed: the next invoice carries the new GSTIN.")
    assert [email.to for email in mail.outbox] == [[owner.email]]
    assert "Fixed: the next invoice" in mail.outbox[0].body and f"/support/{ticket.pk}/" in mail.outbox[0].body
    assert (f"user-{owner.pk}", "support.reply") in [(group, event) for group, event, _ in published]
    event = next(payload for _, name, payload in published if name == "support.reply")
    assert event == {"id": ticket.pk, "title": "Invoice GSTIN", "status": "pending", "message_id": staff_message.pk}
    assert AuditEvent.objects.unscoped().get(action="support.staff_replied").actor_user == staff

    # The customer answers: support's turn again, and staff (here the shared inbox) are emailed.
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/support/{ticket.pk}/", {"body": "Thanks, confirmed."}).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert mail.outbox[-1].to == ["help@leadflow.local"] and "Reply: Invoice GSTIN" in mail.outbox[-1].subject


def test_staff_can_close_with_the_answer_and_the_customer_reopens_by_replying(
    client, organization, staff, django_capture_on_commit_callbacks
):
    owner = member_of(organization, Role.OWNER)
    ticket = ticket_open(organization=organization, author=owner, subject="Export", body="How do I export leads?")
    client.force_login(staff)
    _admin_reply(client, ticket, "Leads → Export CSV.", status="closed")
    ticket.refresh_from_db()
    assert ticket.status == "closed" and ticket.closed_at is not None

    client.force_login(owner)
    client.post(f"/support/{ticket.pk}/", {"body": "Found it, one more thing…"})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at) == ("open", None)
    assert AuditEvent.objects.unscoped().filter(action="support.ticket_reopened").exists()


def test_closing_from_the_admin_tells_the_customer(client, organization, staff, django_capture_on_commit_callbacks):
    owner = member_of(organization, Role.OWNER)
    ticket = ticket_open(organization=organization, author=owner, subject="Old", body="Never mind.")
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/support/supportticket/", {"action": "close", ACTION_CHECKBOX_NAME: [ticket.pk]})
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert mail.outbox[-1].to == [owner.email] and "Ticket closed" in mail.outbox[-1].subject


def test_forms_show_their_errors(client, organization):
    client.force_login(member_of(organization, Role.VIEWER))
    response = client.post("/support/new/", {"subject": "", "category": "question", "body": ""})
    assert response.status_code == 400
    assert response.content.decode().count("This field is required.") == 2
    assert not SupportTicket.objects.unscoped().exists()


def test_members_below_admin_see_only_their_own_tickets(client, organization):
    agent, other_agent = member_of(organization, Role.AGENT), member_of(organization, Role.AGENT)
    admin = member_of(organization, Role.ADMIN)
    mine = SupportTicketFactory(organization=organization, opened_by=agent, subject="Mine")
    theirs = SupportTicketFactory(organization=organization, opened_by=other_agent, subject="Theirs")
    client.force_login(agent)
    listing = client.get("/support/").content.decode()
    assert "Mine" in listing and "Theirs" not in listing
    assert client.get(f"/support/{theirs.pk}/").status_code == 404
    client.force_login(admin)
    listing = client.get("/support/").content.decode()
    assert "Mine" in listing and "Theirs" in listing
    assert client.get(f"/support/{mine.pk}/").status_code == 200


def test_another_organizations_tickets_are_404_on_pages_and_api(client, organization):
    other = OrganizationFactory()
    theirs = SupportTicketFactory(organization=other, subject="Secret of org B")
    TicketMessageFactory(organization=other, ticket=theirs, body="B's private message")
    owner_a = member_of(organization, Role.OWNER)
    client.force_login(owner_a)
    assert "Secret of org B" not in client.get("/support/").content.decode()
    for url in (f"/support/{theirs.pk}/", f"/support/{theirs.pk}/thread/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/support/{theirs.pk}/", {"body": "hijack"}).status_code == 404
    assert client.post(f"/support/{theirs.pk}/close/").status_code == 404

    api = APIClient()
    api.force_authenticate(owner_a)
    assert api.get("/api/v1/support/tickets/").json()["results"] == []
    assert api.get(f"/api/v1/support/tickets/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/v1/support/tickets/{theirs.pk}/replies/", {"body": "hijack"}).status_code == 404
    assert TicketMessage.objects.unscoped().filter(ticket=theirs).count() == 1
    assert SupportTicket.objects.unscoped().get(pk=theirs.pk).status == "open"


def test_the_api_opens_lists_and_answers_tickets(organization, staff, django_capture_on_commit_callbacks):
    owner = member_of(organization, Role.OWNER)
    api = APIClient()
    api.force_authenticate(owner)
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/support/tickets/", {"subject": "API ticket", "body": "From a script."})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["status"], body["opened_by"], [m["body"] for m in body["messages"]]) == (
        "open",
        owner.email,
        ["From a script."],
    )
    assert len(mail.outbox) == 1
    ticket = SupportTicket.objects.unscoped().get(pk=body["id"])
    ticket_reply_by_staff(ticket=ticket, staff=staff, body="Answered.")
    detail = api.get(f"/api/v1/support/tickets/{ticket.pk}/").json()
    assert [(m["from_staff"], m["author"]) for m in detail["messages"]] == [
        (False, owner.display_name),
        (True, "Sam (LeadFlow support)"),
    ]
    assert detail["status"] == "pending"
    reply = api.post(f"/api/v1/support/tickets/{ticket.pk}/replies/", {"body": ""})
    assert reply.status_code == 400 and "body" in reply.json()["errors"]
    assert api.post(f"/api/v1/support/tickets/{ticket.pk}/close/").json()["status"] == "closed"
    assert api.get("/api/v1/support/tickets/", {"status": "closed"}).json()["count"] == 1

    _, raw_key = make_api_key(organization, scopes=["read", "write"])
    keyed = APIClient()
    keyed.credentials(HTTP_X_API_KEY=raw_key)
    assert keyed.get("/api/v1/support/tickets/").status_code == 403


def test_only_staff_answer_as_support(organization):
    from leadflow.exceptions import PermissionDeniedError

    owner = member_of(organization, Role.OWNER)
    ticket = ticket_open(organization=organization, author=owner, subject="Q", body="?")
    with pytest.raises(PermissionDeniedError):
        ticket_reply_by_staff(ticket=ticket, staff=owner, body="I am not staff")
