"""LinkedIn Lead Gen: the scheduled pull of form responses from a local stand-in for the REST API."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import pytest
from django.core.management import call_command
from freezegun import freeze_time

from integrations.constants import ConnectionStatus
from integrations.services import connections as services
from integrations.services import inbound
from leads.models import InboundSubmission, Lead

pytestmark = pytest.mark.django_db

ACCOUNT = "522529623"
FORM_ID = "7423441"
TOKEN = "AQV-linkedin-token"


@pytest.fixture
def linkedin_api(settings):
    routes: dict[str, list[tuple[int, dict]]] = {}
    seen: list[SimpleNamespace] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            seen.append(SimpleNamespace(path=url.path, query=unquote(url.query), headers=dict(self.headers)))
            answers = routes.get(url.path) or [(404, {"message": "Not found", "status": 404})]
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            text = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.LINKEDIN_API_URL = f"http://127.0.0.1:{server.server_port}"
    settings.LINKEDIN_API_VERSION = "202510"
    yield SimpleNamespace(routes=routes, requests=seen)
    server.shutdown()
    server.server_close()


def form_response(response_id: str, email: str, *, test: bool = False) -> dict:
    return {
        "id": response_id,
        "owner": {"sponsoredAccount": f"urn:li:sponsoredAccount:{ACCOUNT}"},
        "submitter": "urn:li:person:abc",
        "leadType": "SPONSORED",
        "versionedLeadGenFormUrn": f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{FORM_ID},1)",
        "submittedAt": 1763892000000,
        "testLead": test,
        "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:123456"}},
        "associatedEntity": {"associatedCreative": "urn:li:sponsoredCreative:654321"},
        "formResponse": {
            "answers": [
                {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "Meera"}}},
                {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Shah"}}},
                {"questionId": 3, "answerDetails": {"textQuestionAnswer": {"answer": email}}},
                {"questionId": 4, "answerDetails": {"textQuestionAnswer": {"answer": "20-50 seats"}}},
            ],
            "consentResponses": [{"consentId": 11, "accepted": True}],
        },
    }


LEAD_FORM = {
    "id": int(FORM_ID),
    "content": {
        "questions": [
            {"questionId": 1, "name": "firstName", "predefinedField": "FIRST_NAME"},
            {"questionId": 2, "name": "lastName", "predefinedField": "LAST_NAME"},
            {"questionId": 3, "name": "email", "predefinedField": "EMAIL"},
            {"questionId": 4, "name": "How many seats?", "question": {"localized": {"en_US": "How many seats?"}}},
        ]
    },
}


@pytest.fixture
def connection(organization):
    return services.connection_create(
        organization=organization,
        provider="linkedin",
        name="Acme ads",
        credentials={"access_token": TOKEN},
        settings={"sponsored_account": ACCOUNT},
    )


def test_the_sync_maps_answers_by_predefined_field_and_is_idempotent(organization, connection, linkedin_api):
    linkedin_api.routes["/rest/leadFormResponses"] = [
        (
            200,
            {
                "elements": [
                    form_response("r-1", "meera@example.com"),
                    form_response("r-2", "t@example.com", test=True),
                ],
                "paging": {"start": 0, "count": 100, "total": 2},
            },
        )
    ]
    linkedin_api.routes[f"/rest/leadForms/{FORM_ID}"] = [(200, LEAD_FORM)]
    with freeze_time("2026-11-23 12:00:00"):
        call_command("sync_linkedin_leads")

    leads = {lead.external_id: lead for lead in Lead.objects.unscoped().filter(organization=organization)}
    lead = leads["r-1"]
    assert (lead.source, lead.first_name, lead.last_name, lead.email) == (
        "linkedin",
        "Meera",
        "Shah",
        "meera@example.com",
    )
    assert (lead.form_id, lead.ad_campaign_id, lead.ad_id) == (FORM_ID, "123456", "654321")
    assert lead.custom["How many seats?"] == "20-50 seats"
    assert lead.consent_given is True
    assert "test-lead" in leads["r-2"].tags

    listing = next(r for r in linkedin_api.requests if r.path == "/rest/leadFormResponses")
    assert f"owner=(sponsoredAccount:urn:li:sponsoredAccount:{ACCOUNT})" in listing.query
    assert "leadType=(leadType:SPONSORED)" in listing.query
    assert f"end:{int(datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp() * 1000)}" in listing.query
    assert listing.headers["Authorization"] == f"Bearer {TOKEN}"
    assert listing.headers["LinkedIn-Version"] == "202510"
    assert listing.headers["X-Restli-Protocol-Version"] == "2.0.0"
    connection.refresh_from_db()
    assert connection.last_synced_at == datetime(2026, 11, 23, 12, tzinfo=UTC)

    # The next run sees the same responses again: nothing new, nothing twice.
    with freeze_time("2026-11-23 12:15:00"):
        assert inbound.linkedin_connections_sync() == 0
    assert Lead.objects.unscoped().filter(organization=organization).count() == 2
    assert InboundSubmission.objects.unscoped().filter(organization=organization).count() == 2
    last = [r for r in linkedin_api.requests if r.path == "/rest/leadFormResponses"][-1]
    assert f"start:{int(datetime(2026, 11, 23, 11, 50, tzinfo=UTC).timestamp() * 1000)}" in last.query


def test_a_revoked_token_marks_the_connection_in_error(organization, connection, linkedin_api):
    linkedin_api.routes["/rest/leadFormResponses"] = [(401, {"message": "Invalid access token", "status": 401})]
    assert inbound.linkedin_connections_sync() == 0
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR and "Invalid access token" in connection.last_error
    assert connection.last_synced_at is None


def test_connecting_from_the_page_stores_the_token_encrypted(client, organization):
    from accounts.constants import Role
    from integrations.models import IntegrationConnection

    from ..conftest import member_of

    client.force_login(member_of(organization, Role.ADMIN))
    assert "Connect LinkedIn" in client.get("/integrations/").content.decode()
    bad = client.post("/integrations/connect/linkedin/", {"access_token": "x", "sponsored_account": "acme"})
    assert bad.status_code == 400
    response = client.post(
        "/integrations/connect/linkedin/",
        {"access_token": TOKEN, "sponsored_account": f"urn:li:sponsoredAccount:{ACCOUNT}"},
    )
    assert response.status_code == 302
    connection = IntegrationConnection.objects.unscoped().get(organization=organization, provider="linkedin")
    assert connection.credential("access_token") == TOKEN and connection.settings["sponsored_account"] == ACCOUNT
