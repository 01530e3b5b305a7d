"""Facebook Lead Ads: the handshake, signed notifications, the Graph API fetch (a local stand-in server), retries
with backoff, auth errors, replay and the backfill."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from freezegun import freeze_time
from rest_framework.test import APIClient

from accounts.constants import Role
from integrations import tasks
from integrations.constants import FACEBOOK_FETCH_RETRY_DELAYS, ConnectionStatus
from integrations.services import connections as connection_services
from integrations.services import inbound
from leads.intake.pipeline import submission_process
from leads.models import InboundSubmission, Lead

from ..factories import MembershipFactory

pytestmark = pytest.mark.django_db

APP_SECRET = "fb-app-secret"
VERIFY_TOKEN = "my-verify-token"
PAGE_ID = "112233445566778899"  # more than 2^53: must survive as a string
LEADGEN_ID = "9007199254740993123"
FORM_ID = "555000111222333444"
PAGE_TOKEN = "EAAPageToken"


@pytest.fixture
def graph(settings):
    """A stand-in Graph API on an ephemeral loopback port. ``routes[(method, path)]`` is a list of (status, body)
    answered in order (the last one repeats); every request is recorded."""
    routes: dict[tuple[str, str], list[tuple[int, dict]]] = {}
    seen: list[SimpleNamespace] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            url = urlsplit(self.path)
            seen.append(SimpleNamespace(method=self.command, path=url.path, query=parse_qs(url.query)))
            answers = routes.get((self.command, url.path)) or [(404, {"error": {"message": "no route", "code": 803}})]
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            text = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    settings.FACEBOOK_GRAPH_URL = base
    settings.FACEBOOK_GRAPH_VERSION = "21.0"
    settings.FACEBOOK_APP_SECRET = APP_SECRET
    settings.FACEBOOK_VERIFY_TOKEN = VERIFY_TOKEN
    yield SimpleNamespace(base=base, routes=routes, requests=seen, prefix="/v21.0")
    server.shutdown()
    server.server_close()


def graph_lead(leadgen_id: str = LEADGEN_ID, email: str = "asha@example.com") -> dict:
    return {
        "id": leadgen_id,
        "created_time": "2024-05-01T10:00:00+0000",
        "ad_id": "238000000000000001",
        "form_id": FORM_ID,
        "campaign_id": "238000000000000777",
        "campaign_name": "Pune launch",
        "platform": "fb",
        "is_organic": False,
        "field_data": [
            {"name": "full_name", "values": ["Asha Rao"]},
            {"name": "email", "values": [email]},
            {"name": "phone_number", "values": ["+919812345678"]},
            {"name": "city", "values": ["Pune"]},
            {"name": "what_is_your_budget?", "values": ["5-10 lakh"]},
        ],
    }


def notification(*leadgen_ids: str, page_id: str = PAGE_ID) -> bytes:
    """Ids as bare JSON numbers beyond 2^53, exactly as Meta sends them (json.dumps would quote our strings)."""
    changes = [
        {
            "field": "leadgen",
            "value": {
                "leadgen_id": f"<int:{leadgen_id}>",
                "page_id": f"<int:{page_id}>",
                "form_id": f"<int:{FORM_ID}>",
                "ad_id": 238000000000000001,
                "adgroup_id": 238000000000000002,
                "created_time": 1700000000,
            },
        }
        for leadgen_id in leadgen_ids
    ]
    body = json.dumps({"object": "page", "entry": [{"id": page_id, "time": 1700000000, "changes": changes}]})
    return re.sub(r'"<int:(\d+)>"', r"\1", body).encode()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def page(organization):
    MembershipFactory(organization=organization, role=Role.OWNER)
    return connection_services.connection_create(
        organization=organization,
        provider="facebook",
        name="Acme Realty",
        credentials={"page_access_token": PAGE_TOKEN},
        external_account_id=PAGE_ID,
    )


@pytest.fixture
def client():
    return APIClient(enforce_csrf_checks=True)


def deliver(client, body: bytes, signature: str | None = None):
    extra = {"HTTP_X_HUB_SIGNATURE_256": signature if signature is not None else sign(body)}
    return client.post("/api/webhooks/facebook/", body, content_type="application/json", **extra)


def lead_route(graph, leadgen_id=LEADGEN_ID):
    return ("GET", f"{graph.prefix}/{leadgen_id}")


# The handshake -------------------------------------------------------------------------------------------------------


def test_the_handshake_echoes_the_challenge_only_for_our_token(client, graph):
    ok = client.get(
        "/api/webhooks/facebook/",
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200 and ok.content == b"1158201444"
    wrong = client.get(
        "/api/webhooks/facebook/", {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
    )
    assert wrong.status_code == 403


# Notifications -------------------------------------------------------------------------------------------------------


def test_a_signed_notification_fetches_the_lead_and_keeps_the_ids(client, organization, page, graph):
    graph.routes[lead_route(graph)] = [(200, graph_lead())]
    response = deliver(client, notification(LEADGEN_ID))
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 1, "queued": 1}

    lead = Lead.objects.unscoped().get(organization=organization)
    assert (lead.source, lead.external_id, lead.email, lead.phone, lead.city) == (
        "facebook",
        LEADGEN_ID,
        "asha@example.com",
        "+919812345678",
        "Pune",
    )
    assert (lead.ad_id, lead.form_id, lead.ad_campaign_id) == ("238000000000000001", FORM_ID, "238000000000000777")
    assert lead.custom["what_is_your_budget?"] == "5-10 lakh"
    assert lead.custom["facebook_page_id"] == PAGE_ID
    assert (lead.utm_source, lead.utm_campaign) == ("facebook", "Pune launch")

    fetch = graph.requests[-1]
    assert fetch.path == f"/v21.0/{LEADGEN_ID}"
    assert fetch.query["access_token"] == [PAGE_TOKEN]
    assert "campaign_id" in fetch.query["fields"][0]

    submission = InboundSubmission.objects.unscoped().get(lead=lead)
    stored = json.loads(submission.raw_body)
    assert stored["leadgen_id"] == LEADGEN_ID and stored["page_id"] == PAGE_ID  # strings, not rounded floats
    page.refresh_from_db()
    assert page.last_success_at is not None


def test_redeliveries_and_batches_make_one_lead_each(client, organization, page, graph):
    second = "9007199254740993124"
    graph.routes[lead_route(graph)] = [(200, graph_lead())]
    graph.routes[lead_route(graph, second)] = [(200, graph_lead(second, email="ravi@example.com"))]
    body = notification(LEADGEN_ID, second)
    assert deliver(client, body).json() == {"received": 2, "queued": 2}
    again = deliver(client, body)
    assert again.status_code == 200 and again.json()["queued"] == 0
    assert Lead.objects.unscoped().filter(organization=organization).count() == 2
    assert len([r for r in graph.requests if r.path.endswith(LEADGEN_ID)]) == 1


def test_a_bad_signature_is_refused_logged_and_stored_unprocessed(client, organization, page, graph, caplog):
    body = notification(LEADGEN_ID)
    for signature in (sign(body, "another-secret"), "", "sha1=abc"):
        response = deliver(client, body, signature)
        assert response.status_code == 403
    assert "X-Hub-Signature-256" in caplog.text
    refused = InboundSubmission.objects.unscoped().filter(organization=organization)
    assert refused.count() == 3
    assert set(refused.values_list("status", flat=True)) == {"rejected"}
    assert refused.first().raw_body == body.decode()
    assert graph.requests == []  # nothing was fetched for an unverified notification
    assert not Lead.objects.unscoped().exists()
    # The real delivery afterwards still goes through.
    graph.routes[lead_route(graph)] = [(200, graph_lead())]
    assert deliver(client, body).status_code == 200
    assert Lead.objects.unscoped().filter(organization=organization).count() == 1


def test_pages_nobody_connected_are_acknowledged(client, graph):
    response = deliver(client, notification(LEADGEN_ID, page_id="42"))
    assert response.status_code == 200 and response.json() == {"received": 0, "queued": 0}


# Graph failures -------------------------------------------------------------------------------------------------------


def test_graph_failures_retry_on_the_schedule_then_leave_the_submission_failed_and_replayable(
    client, organization, page, graph, monkeypatch
):
    graph.routes[lead_route(graph)] = [(500, {"error": {"message": "An unknown error occurred", "code": 1}})]
    countdowns: list[float] = []
    original_apply_async = tasks.fetch_facebook_lead.apply_async

    def recording_apply_async(*args, **kwargs):
        if "countdown" in kwargs:  # the first attempt is queued by delay(), with none
            countdowns.append(kwargs["countdown"])
        return original_apply_async(*args, **kwargs)  # eager: the next attempt runs at once, at the frozen time

    monkeypatch.setattr(tasks.fetch_facebook_lead, "apply_async", recording_apply_async)
    with freeze_time("2026-11-23 10:00:00"):
        assert deliver(client, notification(LEADGEN_ID)).status_code == 200  # Meta is answered whatever happens

    assert countdowns == [delay.total_seconds() for delay in FACEBOOK_FETCH_RETRY_DELAYS]
    assert len([r for r in graph.requests if r.path.endswith(LEADGEN_ID)]) == len(FACEBOOK_FETCH_RETRY_DELAYS) + 1
    submission = InboundSubmission.objects.unscoped().get(organization=organization)
    assert submission.status == "failed"
    assert "unknown error" in submission.error["detail"]
    assert submission.error["failed_at"].startswith("2026-11-23T10:00:00")
    page.refresh_from_db()
    assert page.consecutive_errors == 1 and page.status == ConnectionStatus.CONNECTED

    # Graph recovers: the replay (any of the intake's replays) fetches the lead again.
    graph.routes[lead_route(graph)] = [(200, graph_lead())]
    outcome = submission_process(submission)
    assert outcome.status == "accepted" and outcome.lead.external_id == LEADGEN_ID


def test_the_retry_schedule(client):
    assert [inbound.facebook_fetch_retry_delay(n) for n in range(len(FACEBOOK_FETCH_RETRY_DELAYS))] == list(
        FACEBOOK_FETCH_RETRY_DELAYS
    )
    assert inbound.facebook_fetch_retry_delay(len(FACEBOOK_FETCH_RETRY_DELAYS)) is None


def test_an_expired_token_fails_at_once_and_marks_the_connection_in_error(
    client, organization, page, graph, django_capture_on_commit_callbacks
):
    expired = {
        "error": {
            "message": "Error validating access token: Session has expired",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
            "fbtrace_id": "AbCdEf",
        }
    }
    graph.routes[lead_route(graph)] = [(400, expired)]
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, notification(LEADGEN_ID)).status_code == 200
    assert len(graph.requests) == 1  # no retries: a new token is needed
    assert InboundSubmission.objects.unscoped().get(organization=organization).status == "failed"
    page.refresh_from_db()
    assert page.status == ConnectionStatus.ERROR
    assert "Error validating access token" in page.last_error
    assert len(mail.outbox) == 1 and "Acme Realty" in mail.outbox[0].body


def test_a_replayed_notification_whose_fetch_fails_is_rejected_not_raised(organization, page, graph):
    graph.routes[lead_route(graph)] = [(500, {"error": {"message": "down", "code": 2}})]
    submission, _ = inbound.submission_store(
        organization=organization,
        source="facebook",
        raw_body=json.dumps({"leadgen_id": LEADGEN_ID, "page_id": PAGE_ID}),
        context={"connection_id": page.pk, "leadgen_id": LEADGEN_ID},
    )
    outcome = submission_process(submission)
    assert outcome.status == "rejected"
    assert "Facebook did not return the lead" in outcome.errors["non_field_errors"][0]


# Connecting and the backfill -------------------------------------------------------------------------------------------


def test_connecting_a_page_by_token_checks_it_subscribes_and_encrypts(organization, graph):
    graph.routes[("GET", f"{graph.prefix}/me")] = [(200, {"id": PAGE_ID, "name": "Acme Realty"})]
    graph.routes[("POST", f"{graph.prefix}/{PAGE_ID}/subscribed_apps")] = [(200, {"success": True})]
    connection = inbound.facebook_page_connect(organization=organization, page_access_token=PAGE_TOKEN)
    assert (connection.name, connection.external_account_id) == ("Acme Realty", PAGE_ID)
    assert connection.credential("page_access_token") == PAGE_TOKEN
    subscribe = graph.requests[-1]
    assert subscribe.query["subscribed_fields"] == ["leadgen"]
    # Connecting the same page again updates the token instead of adding a second connection.
    again = inbound.facebook_page_connect(organization=organization, page_access_token=PAGE_TOKEN + "2")
    assert again.pk == connection.pk and again.credential("page_access_token") == PAGE_TOKEN + "2"


def test_a_refused_token_is_a_service_error(organization, graph):
    graph.routes[("GET", f"{graph.prefix}/me")] = [(400, {"error": {"message": "Invalid OAuth", "code": 190}})]
    with pytest.raises(inbound.ServiceError, match="Invalid OAuth"):
        inbound.facebook_page_connect(organization=organization, page_access_token="bad")


def test_the_backfill_pulls_each_forms_leads_since_the_last_sync_once(organization, page, graph):
    forms = ("GET", f"{graph.prefix}/{PAGE_ID}/leadgen_forms")
    leads = ("GET", f"{graph.prefix}/{FORM_ID}/leads")
    graph.routes[forms] = [(200, {"data": [{"id": FORM_ID, "name": "Brochure"}], "paging": {}})]
    second_page = f"{graph.base}{graph.prefix}/{FORM_ID}/leads?after=CURSOR2&access_token={PAGE_TOKEN}"
    graph.routes[leads] = [
        (200, {"data": [graph_lead("1001")], "paging": {"cursors": {"after": "CURSOR2"}, "next": second_page}}),
        (200, {"data": [graph_lead("1002", email="b@example.com")], "paging": {"cursors": {}}}),
    ]
    with freeze_time("2026-11-23 12:00:00"):
        call_command("sync_facebook_leads")
    assert sorted(Lead.objects.unscoped().filter(organization=organization).values_list("external_id", flat=True)) == [
        "1001",
        "1002",
    ]
    first_query = next(r for r in graph.requests if r.path.endswith("/leads")).query
    filtering = json.loads(first_query["filtering"][0])
    assert filtering[0]["field"] == "time_created" and filtering[0]["operator"] == "GREATER_THAN"
    page.refresh_from_db()
    assert page.last_synced_at == datetime(2026, 11, 23, 12, tzinfo=UTC)

    # The next sync asks from the last one (minus the overlap) and re-seen leads make nothing new.
    graph.requests.clear()
    graph.routes[leads] = [(200, {"data": [graph_lead("1001")], "paging": {}})]
    with freeze_time("2026-11-23 12:15:00"):
        assert tasks.sync_facebook_leads() == 0
    since = json.loads(graph.requests[-1].query["filtering"][0])[0]["value"]
    assert since == int(datetime(2026, 11, 23, 11, 50, tzinfo=UTC).timestamp())
    assert Lead.objects.unscoped().filter(organization=organization).count() == 2


def test_a_lead_the_webhook_stored_but_could_not_fetch_is_completed_by_the_backfill(client, organization, page, graph):
    graph.routes[lead_route(graph)] = [(400, {"error": {"message": "Unsupported get request", "code": 100}})]
    deliver(client, notification(LEADGEN_ID))
    assert InboundSubmission.objects.unscoped().get(organization=organization).status == "failed"
    graph.routes[("GET", f"{graph.prefix}/{PAGE_ID}/leadgen_forms")] = [(200, {"data": [{"id": FORM_ID}]})]
    graph.routes[("GET", f"{graph.prefix}/{FORM_ID}/leads")] = [(200, {"data": [graph_lead()]})]
    inbound.facebook_connections_sync()
    submission = InboundSubmission.objects.unscoped().get(organization=organization)
    assert submission.status == "accepted" and submission.lead.external_id == LEADGEN_ID
