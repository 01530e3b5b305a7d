"""Closing the loop with Meta: a Facebook lead's stage changes go to the Conversions API for CRM (a loopback
stand-in for the Graph API), once per change, retried under frozen time, per connection opt-in."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.utils import timezone
from freezegun import freeze_time

from accounts.constants import Role
from integrations.constants import CONVERSION_RETRY_DELAYS, ConnectionStatus, ConversionEventStatus
from integrations.models import ConversionEvent
from integrations.services import connections as connection_services
from integrations.services import conversions
from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope
from leads.intake.pipeline import lead_intake
from leads.models import Lead, OutboxEvent, PipelineStage
from leads.services.leads import lead_change_stage
from leads.services.outbox import outbox_handle_pending, outbox_publish
from tests.conftest import member_of

from ..factories import ConversionEventFactory, InboundSubmissionFactory, LeadFactory, MembershipFactory

pytestmark = pytest.mark.django_db

PAGE_ID = "112233445566778899"
LEADGEN_ID = "9007199254740993123"  # beyond 2^53: must reach Meta as this exact integer
DATASET_ID = "1234567890123456"
PAGE_TOKEN = "EAAPageToken"
DATASET_TOKEN = "EAADatasetToken"


@pytest.fixture
def graph(settings):
    """A stand-in Graph API on an ephemeral loopback port. ``answers`` scripts (status, body) in order (the last one
    repeats); every request is recorded with its query and form body."""
    answers: list[tuple[int, dict]] = []
    seen: list[SimpleNamespace] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            seen.append(SimpleNamespace(path=url.path, query=parse_qs(url.query), body=parse_qs(body)))
            status, payload = (
                answers.pop(0) if len(answers) > 1 else (answers[0] if answers else (200, {"events_received": 1}))
            )
            text = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.FACEBOOK_GRAPH_URL = f"http://127.0.0.1:{server.server_port}"
    settings.FACEBOOK_GRAPH_VERSION = "21.0"
    yield SimpleNamespace(answers=answers, requests=seen)
    server.shutdown()
    server.server_close()


def _page(organization, *, enabled=True, stages=(), **credentials):
    connection = connection_services.connection_create(
        organization=organization,
        provider="facebook",
        name="Acme Realty",
        credentials={"page_access_token": PAGE_TOKEN, **credentials},
        external_account_id=PAGE_ID,
    )
    if enabled:
        conversions.connection_conversions_configure(
            connection=connection, enabled=True, dataset_id=DATASET_ID, stages=stages
        )
    return connection


def _facebook_lead(organization, connection, leadgen_id=LEADGEN_ID, **kwargs) -> Lead:
    """A lead as the intake stores a Facebook one: its leadgen id as external id, its submission naming the
    connection."""
    lead = LeadFactory(organization=organization, source="facebook", external_id=leadgen_id, **kwargs)
    InboundSubmissionFactory(
        organization=organization,
        source="facebook",
        status="accepted",
        lead=lead,
        context={"connection_id": connection.pk, "provider": "facebook", "leadgen_id": leadgen_id},
    )
    return lead


def _move(lead, stage_name, capture):
    with organization_scope(lead.organization):
        stage = PipelineStage.objects.get(name=stage_name)
        with capture(execute=True):
            lead_change_stage(lead=lead, stage=stage, actor=None)


def _sent_events(request) -> list[dict]:
    return json.loads(request.query["data"][0])


@pytest.fixture
def organization_with_owner(organization):
    MembershipFactory(organization=organization, role=Role.OWNER)
    return organization


def test_a_facebook_lead_moved_to_qualified_sends_the_documented_event_once(
    organization_with_owner, graph, django_capture_on_commit_callbacks
):
    organization = organization_with_owner
    connection = _page(organization)
    lead = _facebook_lead(organization, connection)
    with freeze_time("2026-11-23 10:00:00"):
        _move(lead, "Qualified", django_capture_on_commit_callbacks)

        [request] = graph.requests
        assert request.path == f"/v21.0/{DATASET_ID}/events"
        assert request.query["access_token"] == [PAGE_TOKEN]
        # The raw JSON keeps the leadgen id as an exact integer, as the payload specification documents.
        assert f'"lead_id":{LEADGEN_ID}' in request.query["data"][0]
        assert _sent_events(request) == [
            {
                "event_name": "Qualified",
                "event_time": int(timezone.now().timestamp()),
                "action_source": "system_generated",
                "user_data": {"lead_id": int(LEADGEN_ID)},
                "custom_data": {"event_source": "crm", "lead_event_source": "LeadFlow"},
            }
        ]
        row = ConversionEvent.objects.unscoped().get()
        assert (row.status, row.attempts, row.leadgen_id, row.lead_id) == ("sent", 1, LEADGEN_ID, lead.pk)
        assert row.sent_at == timezone.now() and row.last_status_code == 200
        assert json.loads(row.response_excerpt) == {"events_received": 1}

        # The same outbox batch handled again (a worker died after sending, say) queues and sends nothing more.
        OutboxEvent.objects.unscoped().filter(topic="lead.stage_changed").update(handled_at=None)
        with django_capture_on_commit_callbacks(execute=True):
            assert outbox_handle_pending(organization.pk, "lead.stage_changed") == 1
    assert len(graph.requests) == 1
    assert ConversionEvent.objects.unscoped().count() == 1


def test_a_new_lead_from_the_page_sends_its_first_stage_then_each_stage_it_enters(
    organization, graph, django_capture_on_commit_callbacks
):
    """Meta asks for "all stages as they are updated, including the initial lead stage"."""
    connection = _page(organization)
    graph_lead = {
        "id": LEADGEN_ID,
        "created_time": "2026-11-23T09:59:00+0000",
        "form_id": "555000111222333444",
        "field_data": [
            {"name": "full_name", "values": ["Asha Rao"]},
            {"name": "email", "values": ["asha@example.com"]},
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        outcome = lead_intake(
            organization=organization,
            source="facebook",
            payload=graph_lead,
            context={"connection_id": connection.pk, "provider": "facebook", "leadgen_id": LEADGEN_ID},
        )
    assert outcome.lead.external_id == LEADGEN_ID
    _move(outcome.lead, "Qualified", django_capture_on_commit_callbacks)
    assert [_sent_events(request)[0]["event_name"] for request in graph.requests] == ["New", "Qualified"]
    assert {_sent_events(request)[0]["user_data"]["lead_id"] for request in graph.requests} == {int(LEADGEN_ID)}


def test_the_first_stage_is_right_even_when_the_change_is_handled_first(
    organization, graph, django_capture_on_commit_callbacks
):
    connection = _page(organization)
    with django_capture_on_commit_callbacks(execute=False) as created_callbacks:
        lead = _facebook_lead(organization, connection)
        with organization_scope(organization):
            outbox_publish(organization=organization, topic="lead.created", payload={"lead_id": lead.pk})
    _move(lead, "Qualified", django_capture_on_commit_callbacks)  # its worker got there first
    with django_capture_on_commit_callbacks(execute=True):
        for callback in created_callbacks:
            callback()
    assert [_sent_events(request)[0]["event_name"] for request in graph.requests] == ["Qualified", "New"]


def test_a_dataset_token_is_used_when_one_was_pasted(organization, graph, django_capture_on_commit_callbacks):
    connection = _page(organization, conversions_access_token=DATASET_TOKEN)
    lead = _facebook_lead(organization, connection)
    _move(lead, "Won", django_capture_on_commit_callbacks)
    [request] = graph.requests
    assert request.query["access_token"] == [DATASET_TOKEN]
    assert _sent_events(request)[0]["event_name"] == "Won"


def test_two_moves_before_the_worker_runs_send_each_stage_entered(
    organization, graph, django_capture_on_commit_callbacks
):
    connection = _page(organization)
    lead = _facebook_lead(organization, connection)
    with organization_scope(organization):
        qualified, won = PipelineStage.objects.get(name="Qualified"), PipelineStage.objects.get(name="Won")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            lead_change_stage(lead=lead, stage=qualified, actor=None)
            lead_change_stage(lead=lead, stage=won, actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    sent = sorted(
        (_sent_events(request)[0]["event_name"] for request in graph.requests), key=["Qualified", "Won"].index
    )
    assert sent == ["Qualified", "Won"]


def test_only_the_chosen_stages_are_sent(organization, graph, django_capture_on_commit_callbacks):
    connection = _page(organization, stages=["won"])
    lead = _facebook_lead(organization, connection)
    _move(lead, "Qualified", django_capture_on_commit_callbacks)
    assert graph.requests == []
    _move(lead, "Won", django_capture_on_commit_callbacks)
    assert [_sent_events(request)[0]["event_name"] for request in graph.requests] == ["Won"]


def test_nothing_is_sent_without_the_opt_in(organization, graph, django_capture_on_commit_callbacks):
    connection = _page(organization, enabled=False)
    lead = _facebook_lead(organization, connection)
    _move(lead, "Qualified", django_capture_on_commit_callbacks)
    assert graph.requests == []
    assert not ConversionEvent.objects.unscoped().exists()


def test_leads_from_other_sources_are_not_sent(organization, graph, django_capture_on_commit_callbacks):
    _page(organization)
    lead = LeadFactory(organization=organization, source="google_ads", external_id="123456")
    _move(lead, "Qualified", django_capture_on_commit_callbacks)
    assert graph.requests == []
    assert not ConversionEvent.objects.unscoped().exists()


def test_a_lead_of_a_page_connected_by_another_organization_is_not_sent(
    organization, other_organization, graph, django_capture_on_commit_callbacks
):
    _page(other_organization)  # opted in, but not ours
    ours = connection_services.connection_create(
        organization=organization, provider="facebook", name="Ours", credentials={"page_access_token": PAGE_TOKEN}
    )
    lead = _facebook_lead(organization, ours)
    _move(lead, "Qualified", django_capture_on_commit_callbacks)
    assert graph.requests == []


def test_a_server_error_is_retried_on_the_schedule(organization, graph, django_capture_on_commit_callbacks):
    connection = _page(organization)
    lead = _facebook_lead(organization, connection)
    graph.answers.extend(
        [(500, {"error": {"message": "An unknown error occurred", "code": 1}}), (200, {"events_received": 1})]
    )
    with freeze_time("2026-11-23 10:00:00") as clock:
        _move(lead, "Qualified", django_capture_on_commit_callbacks)
        row = ConversionEvent.objects.unscoped().get()
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
        assert "unknown error" in row.last_error
        assert row.next_attempt_at == timezone.now() + CONVERSION_RETRY_DELAYS[0]
        assert len(graph.requests) == 1  # the countdown retry ran early (eager) and found it not yet due

        clock.tick(CONVERSION_RETRY_DELAYS[0] - timedelta(seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            assert conversions.conversion_events_send_due() == 0
        clock.tick(timedelta(seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            assert conversions.conversion_events_send_due() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert len(graph.requests) == 2
    assert _sent_events(graph.requests[0]) == _sent_events(graph.requests[1])  # the same event, the same time


def test_retries_end_failed_and_a_replay_sends_again(organization, graph, django_capture_on_commit_callbacks):
    connection = _page(organization)
    lead = _facebook_lead(organization, connection)
    graph.answers.append((503, {"error": {"message": "Service temporarily unavailable", "code": 2}}))
    with freeze_time("2026-11-23 10:00:00") as clock:
        _move(lead, "Qualified", django_capture_on_commit_callbacks)
        for delay in CONVERSION_RETRY_DELAYS:
            clock.tick(delay)
            with django_capture_on_commit_callbacks(execute=True):
                conversions.conversion_events_send_due()
        row = ConversionEvent.objects.unscoped().get()
        assert (row.status, row.attempts, row.next_attempt_at) == ("failed", len(CONVERSION_RETRY_DELAYS) + 1, None)
        assert len(graph.requests) == len(CONVERSION_RETRY_DELAYS) + 1

        graph.answers[:] = [(200, {"events_received": 1})]
        with django_capture_on_commit_callbacks(execute=True):
            conversions.conversion_event_replay(conversion_event=row)
    row.refresh_from_db()
    assert row.status == "sent" and len(graph.requests) == len(CONVERSION_RETRY_DELAYS) + 2
    with pytest.raises(ServiceError):
        conversions.conversion_event_replay(conversion_event=row)


def test_an_expired_token_fails_the_event_and_turns_the_connection_to_error(
    organization_with_owner, graph, django_capture_on_commit_callbacks
):
    connection = _page(organization_with_owner)
    lead = _facebook_lead(organization_with_owner, connection)
    graph.answers.append(
        (400, {"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190}})
    )
    _move(lead, "Qualified", django_capture_on_commit_callbacks)
    row = ConversionEvent.objects.unscoped().get()
    assert (row.status, row.last_status_code) == ("failed", 400)
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR
    assert "Conversions API" in connection.last_error and "190" in connection.last_error
    assert len(mail.outbox) == 1
    assert len(graph.requests) == 1  # not retried: a token cannot fix itself


def test_a_connection_that_stopped_sending_skips_what_was_queued(
    organization, graph, django_capture_on_commit_callbacks
):
    connection = _page(organization)
    lead = _facebook_lead(organization, connection)
    with organization_scope(organization), django_capture_on_commit_callbacks(execute=False) as callbacks:
        lead_change_stage(lead=lead, stage=PipelineStage.objects.get(name="Qualified"), actor=None)
    conversions.connection_conversions_configure(connection=connection, enabled=False, dataset_id=DATASET_ID)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    assert graph.requests == []
    assert set(ConversionEvent.objects.unscoped().values_list("status", flat=True)) <= {ConversionEventStatus.SKIPPED}


# Settings and the page ------------------------------------------------------------------------------------------------


def test_settings_are_validated(organization):
    connection = _page(organization, enabled=False)
    with pytest.raises(ServiceError) as missing:
        conversions.connection_conversions_configure(connection=connection, enabled=True, dataset_id="")
    assert missing.value.field == "dataset_id"
    with pytest.raises(ServiceError):
        conversions.connection_conversions_configure(connection=connection, enabled=True, dataset_id="pixel-1")
    webhook = connection_services.connection_create(organization=organization, provider="webhook", name="Zap")
    with pytest.raises(ServiceError):
        conversions.connection_conversions_configure(connection=webhook, enabled=True, dataset_id=DATASET_ID)


@pytest.fixture
def admin_page(client, organization):
    client.force_login(member_of(organization, Role.ADMIN))
    return client


def test_the_page_turns_it_on_and_lists_what_was_sent(admin_page, organization):
    connection = _page(organization, enabled=False)
    url = f"/integrations/connections/{connection.pk}/conversions/"
    refused = admin_page.post(url, {"conversions_enabled": "on", "dataset_id": ""})
    assert refused.status_code == 400 and "dataset" in refused.content.decode()

    response = admin_page.post(
        url,
        {
            "conversions_enabled": "on",
            "dataset_id": DATASET_ID,
            "conversions_stages": "Qualified, won",
            "access_token": DATASET_TOKEN,
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.settings["conversions_enabled"] is True and connection.settings["dataset_id"] == DATASET_ID
    assert connection.settings["conversions_stages"] == ["Qualified", "won"]
    assert connection.credential("conversions_access_token") == DATASET_TOKEN

    ConversionEventFactory(organization=organization, connection=connection, event_name="Qualified", status="sent")
    page = admin_page.get(f"/integrations/connections/{connection.pk}/").content.decode()
    assert 'data-testid="conversions-form"' in page and 'data-testid="conversion-events"' in page
    assert DATASET_TOKEN not in page  # the token is never shown again


def test_other_organizations_connections_and_events_are_out_of_reach(admin_page, organization, other_organization):
    theirs = _page(other_organization)
    ConversionEventFactory(organization=other_organization, connection=theirs, event_name="TheirStage")
    response = admin_page.post(
        f"/integrations/connections/{theirs.pk}/conversions/", {"conversions_enabled": "", "dataset_id": DATASET_ID}
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.settings["conversions_enabled"] is True
    ours = _page(organization)
    page = admin_page.get(f"/integrations/connections/{ours.pk}/").content.decode()
    assert "TheirStage" not in page


def test_the_admin_lists_events_and_replays_failed_ones(
    admin_client, organization, graph, django_capture_on_commit_callbacks
):
    connection = _page(organization)
    failed = ConversionEventFactory(organization=organization, connection=connection, leadgen_id=LEADGEN_ID)
    assert admin_client.get("/admin/integrations/conversionevent/").status_code == 200
    assert admin_client.get(f"/admin/integrations/conversionevent/{failed.pk}/change/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/integrations/conversionevent/", {"action": "replay", "_selected_action": [failed.pk]}
        )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == ConversionEventStatus.SENT
    assert _sent_events(graph.requests[0])[0]["user_data"] == {"lead_id": int(LEADGEN_ID)}
