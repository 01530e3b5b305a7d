"""The intake pipeline through the supplier ingest API: raw-first storage, normalization, dedupe, idempotency,
errors that leave a replayable submission, the outbox, quotas and live events."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.constants import Role
from leadflow.tenancy.context import organization_scope
from leads.constants import StageKind, SubmissionStatus
from leads.intake.pipeline import lead_intake, submission_process
from leads.models import InboundSubmission, Lead, LeadActivity, MonthlyLeadUsage, OutboxEvent, PipelineStage
from leads.services import outbox
from tests.factories import LeadFactory, PlanFactory, SubscriptionFactory, make_api_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/leads/ingest/"
PAYLOAD = {
    "external_id": "SUP-1",
    "first_name": "  asha ",
    "last_name": "VERMA",
    "email": " Asha.Verma@Example.COM ",
    "phone": "098765 43210",
    "state": "Maharashtra",
    "custom": {"budget": 4500000},
    "utm": {"source": "google", "campaign": "pune-2bhk"},
    "consent": {"given": True, "text": "I agree to be contacted.", "method": "checkbox"},
    "tags": ["2BHK", "pune"],
}


def post(client, payload=PAYLOAD, **headers):
    return client.post(URL, json.dumps(payload), content_type="application/json", **headers)


def test_a_lead_is_stored_raw_normalized_and_announced(ingest_client, organization, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(ingest_client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "accepted" and body["duplicate_of"] is None

    lead = Lead.objects.unscoped().get(pk=body["id"])
    assert lead.organization_id == organization.pk
    assert (lead.first_name, lead.last_name, lead.full_name) == ("Asha", "Verma", "Asha Verma")
    assert lead.email == "asha.verma@example.com"
    assert lead.phone == "+919876543210"
    assert (lead.state, lead.country) == ("MH", "IN")
    assert lead.utm_source == "google" and lead.utm_campaign == "pune-2bhk"
    assert lead.consent_given and lead.consent_text == "I agree to be contacted." and lead.consent_at is not None
    assert lead.tags == ["2bhk", "pune"]
    assert lead.custom == {"budget": 4500000}
    assert lead.stage.name == "New"
    assert Lead.objects.unscoped().get(pk=body["id"]).stage.position == 0

    submission = InboundSubmission.objects.unscoped().get(pk=body["submission_id"])
    assert submission.status == SubmissionStatus.ACCEPTED and submission.lead_id == lead.pk
    assert json.loads(submission.raw_body) == PAYLOAD
    assert "X-Api-Key" not in submission.headers and "x-api-key" not in {k.lower() for k in submission.headers}

    assert LeadActivity.objects.unscoped().filter(lead=lead, kind="created").count() == 1
    event = OutboxEvent.objects.unscoped().get(topic="lead.created", payload__lead_id=lead.pk)
    assert event.handled_at is not None  # the worker (eager here) scored it
    lead.refresh_from_db()
    assert lead.score > 0 and lead.score_reasons


def test_the_same_payload_twice_makes_one_lead(ingest_client, django_capture_on_commit_callbacks):
    first = post(ingest_client).json()
    again = post(ingest_client)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["id"] == first["id"] == again.json()["duplicate_of"]
    assert Lead.objects.unscoped().count() == 1
    assert InboundSubmission.objects.unscoped().filter(status="duplicate").count() == 1


def test_same_email_in_the_window_is_a_linked_counted_duplicate(ingest_client):
    first = post(ingest_client).json()
    response = post(ingest_client, {**PAYLOAD, "external_id": "SUP-2", "phone": ""})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "duplicate" and body["duplicate_of"] == first["id"] and body["id"] != first["id"]
    duplicate = Lead.objects.unscoped().get(pk=body["id"])
    assert duplicate.duplicate_of_id == first["id"]
    assert Lead.objects.unscoped().get(pk=first["id"]).duplicate_count == 1
    # The phone alone matches too.
    third = post(ingest_client, {"phone": "+91 98765 43210"}).json()
    assert third["duplicate_of"] == first["id"]
    assert Lead.objects.unscoped().get(pk=first["id"]).duplicate_count == 2


def test_outside_the_window_it_is_a_new_lead(ingest_client, organization):
    old = LeadFactory(organization=organization, email="asha.verma@example.com", phone="")
    Lead.objects.unscoped().filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=31))
    response = post(ingest_client)
    assert response.status_code == 201
    organization.duplicate_window_days = 60
    organization.save()
    assert post(ingest_client, {**PAYLOAD, "external_id": "SUP-9"}).json()["status"] == "duplicate"


def test_idempotency_key_replays_the_first_answer(ingest_client):
    first = post(ingest_client, HTTP_IDEMPOTENCY_KEY="abc-1")
    again = post(ingest_client, HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == 201 and again.status_code == 201
    assert again.json() == first.json()
    assert InboundSubmission.objects.unscoped().count() == 1
    changed = post(ingest_client, {**PAYLOAD, "email": "other@example.com"}, HTTP_IDEMPOTENCY_KEY="abc-1")
    assert changed.status_code == 400
    assert "Idempotency-Key" in changed.json()["errors"]


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"email": "not-an-email", "phone": "12"}, {"email", "phone"}),
        ({"first_name": "No contact"}, {"non_field_errors"}),
        ({"email": "a@example.com", "consent": {"given": "maybe", "at": "yesterday"}}, {"consent.given", "consent.at"}),
        ({"email": "a@example.com", "custom": ["x"]}, {"custom"}),
        ({"email": "a@example.com", "state": "Atlantis"}, {"state"}),
        (
            {"email": "a@example.com", "landing_page": "javascript:alert(1)", "ip_address": "999.1.1.1"},
            {"landing_page", "ip_address"},
        ),
        ({"email": "a@example.com", "deal_value": "lots"}, {"deal_value"}),
    ],
)
def test_bad_input_gets_field_errors_and_a_replayable_submission(ingest_client, payload, fields):
    response = post(ingest_client, payload)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    assert fields <= set(body["errors"]), body
    submission = InboundSubmission.objects.unscoped().get(pk=body["submission_id"])
    assert submission.status == SubmissionStatus.REJECTED
    assert json.loads(submission.raw_body) == payload
    assert set(submission.error["errors"]) >= fields
    assert not Lead.objects.unscoped().exists()


def test_malformed_json_is_stored_and_rejected(ingest_client):
    response = ingest_client.post(URL, '{"email": "a@example.com",', content_type="application/json")
    assert response.status_code == 400
    submission = InboundSubmission.objects.unscoped().get()
    assert submission.raw_body == '{"email": "a@example.com",'
    assert submission.status == SubmissionStatus.REJECTED
    assert "not valid JSON" in response.json()["errors"]["non_field_errors"][0]


def test_keys_and_scopes(api_client, organization):
    assert post(api_client).status_code == 401
    api_client.credentials(HTTP_X_API_KEY="lf_deadbeef_wrong")
    assert post(api_client).status_code == 401
    _, read_only = make_api_key(organization, scopes=["read"])
    api_client.credentials(HTTP_X_API_KEY=read_only)
    response = post(api_client)
    assert response.status_code == 403 and "ingest" in response.json()["detail"]
    assert not InboundSubmission.objects.unscoped().exists()


def _break_the_pipeline(organization):
    """A real database failure: with no open stage the new lead's stage is NULL, which its column refuses."""
    stages = PipelineStage.objects.unscoped().filter(organization=organization, kind=StageKind.OPEN)
    opened = list(stages.values_list("pk", flat=True))
    stages.update(kind=StageKind.LOST)
    return lambda: PipelineStage.objects.unscoped().filter(pk__in=opened).update(kind=StageKind.OPEN)


def test_a_failure_leaves_a_submission_that_reprocess_turns_into_a_lead(ingest_client, organization):
    repair = _break_the_pipeline(organization)
    response = post(ingest_client)
    assert response.status_code == 503
    submission = InboundSubmission.objects.unscoped().get(pk=response.json()["submission_id"])
    assert submission.status == SubmissionStatus.FAILED and "stage_id" in submission.error["detail"]
    assert not Lead.objects.unscoped().exists()
    assert not OutboxEvent.objects.unscoped().exists() and not LeadActivity.objects.unscoped().exists()

    repair()
    call_command("reprocess_submissions", "--status", "failed", "--since", "2000-01-01")
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.ACCEPTED
    assert Lead.objects.unscoped().get().pk == submission.lead_id


@pytest.mark.django_db(transaction=True)
def test_a_failure_outside_any_transaction_rolls_back_and_leaves_the_connection_usable(organization):
    """The new-lead transaction is sent as one BEGIN…COMMIT round trip: a failing statement in it must leave no
    rows and no open transaction behind, and the submission's failure is still recorded."""
    from django.db import connection

    repair = _break_the_pipeline(organization)
    outcome = lead_intake(organization=organization, source="api", payload={"email": "x@example.com"})
    assert outcome.status == SubmissionStatus.FAILED
    assert not connection.in_atomic_block and connection.connection.info.transaction_status == 0  # idle
    assert not Lead.objects.unscoped().exists() and not OutboxEvent.objects.unscoped().exists()
    assert InboundSubmission.objects.unscoped().get(pk=outcome.submission.pk).status == SubmissionStatus.FAILED

    repair()
    outcome = submission_process(InboundSubmission.objects.unscoped().get(pk=outcome.submission.pk))
    assert outcome.status == SubmissionStatus.ACCEPTED
    assert LeadActivity.objects.unscoped().filter(lead=outcome.lead, kind="created").count() == 1
    assert OutboxEvent.objects.unscoped().filter(topic="lead.created").count() == 1


def test_a_rejected_submission_replays_once_the_mapping_accepts_it(organization, monkeypatch):
    outcome = lead_intake(organization=organization, source="webhook", payload={"Mobile No": "98765 43210"})
    assert outcome.status == SubmissionStatus.REJECTED
    monkeypatch.setitem(__import__("leads.intake.mapping", fromlist=["ALIASES"]).ALIASES, "mobile_no", "phone")
    outcome = submission_process(InboundSubmission.objects.unscoped().get(pk=outcome.submission.pk))
    assert outcome.status == SubmissionStatus.ACCEPTED and outcome.lead.phone == "+919876543210"


def test_unknown_fields_are_kept_as_custom_fields(ingest_client):
    body = post(ingest_client, {"email": "b@example.com", "Budget": "50 lakh", "mobile": "9876543211"}).json()
    lead = Lead.objects.unscoped().get(pk=body["id"])
    assert lead.custom == {"Budget": "50 lakh"} and lead.phone == "+919876543211"


def test_ingest_query_count_is_bounded(
    ingest_client, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    post(
        ingest_client, {**PAYLOAD, "external_id": "warm", "email": "warm@example.com", "phone": ""}
    )  # key lookup cache etc.
    # API key, stored submission (in a savepoint here: the test runs in a transaction), savepoint, dedupe locks,
    # one dedupe lookup (UNION ALL of index lookups), lead (its stage chosen inside the INSERT), activity, outbox row, submission outcome,
    # release: none of them grows with the table.
    with django_assert_max_num_queries(12):
        response = post(ingest_client, {**PAYLOAD, "external_id": "SUP-Q", "email": "q@example.com", "phone": ""})
    assert response.status_code == 201


def test_over_quota_leads_are_kept_flagged_and_the_owner_is_alerted_once(
    ingest_client, organization, owner, django_capture_on_commit_callbacks
):
    SubscriptionFactory(organization=organization, plan=PlanFactory(monthly_lead_quota=1))
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert post(ingest_client, {"email": f"q{n}@example.com"}).status_code == 201
    leads = list(Lead.objects.unscoped().order_by("pk"))
    assert [lead.over_quota for lead in leads] == [False, True, True]
    assert MonthlyLeadUsage.objects.unscoped().get(organization=organization).lead_count == 3
    alerts = [m for m in mail.outbox if "quota" in m.subject]
    assert len(alerts) == 1 and owner.email in alerts[0].to


def test_outbox_events_survive_a_broker_outage(organization, monkeypatch, django_capture_on_commit_callbacks):
    from leads import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks.handle_outbox_events, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = lead_intake(organization=organization, source="api", payload={"email": "c@example.com"})
    event = OutboxEvent.objects.unscoped().get(payload__lead_id=outcome.lead.pk)
    assert event.handled_at is None
    monkeypatch.undo()
    assert outbox.outbox_sweep(older_than=timedelta(0)) == 1
    event.refresh_from_db()
    assert event.handled_at is not None and event.attempts == 1
    # Handling again (a redelivered task) does nothing.
    assert outbox.outbox_handle(event.pk) is False


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_submissions_of_one_email_make_one_lead(organization):
    barrier = threading.Barrier(20)
    outcomes, errors = [], []

    def submit(n):
        try:
            barrier.wait()
            outcomes.append(
                lead_intake(
                    organization=organization,
                    source="api",
                    payload={"email": "same@example.com", "first_name": f"Try {n}"},
                ).status
            )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(outcomes).count("accepted") == 1 and outcomes.count("duplicate") == 19
    with organization_scope(organization):
        original = Lead.objects.get(duplicate_of__isnull=True)
        assert Lead.objects.filter(duplicate_of=original).count() == 19
        original.refresh_from_db()
        assert original.duplicate_count == 19
    assert True


@pytest.mark.django_db(transaction=True)
def test_concurrent_redeliveries_of_one_external_id_make_one_lead(organization):
    barrier = threading.Barrier(10)
    outcomes = []

    def submit():
        barrier.wait()
        outcomes.append(
            lead_intake(
                organization=organization, source="api", payload={"external_id": "X-1", "phone": "+14155550123"}
            ).status
        )
        connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("accepted") == 1 and outcomes.count("duplicate") == 9
    assert Lead.objects.unscoped().filter(organization=organization).count() == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40) | st.just("a\x00b"),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(
    [
        "email",
        "phone",
        "name",
        "first_name",
        "state",
        "country",
        "consent",
        "utm",
        "custom",
        "tags",
        "deal_value",
        "landing_page",
        "ip_address",
        "external_id",
    ]
) | st.text(max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.dictionaries(field_names, json_values, max_size=8))
def test_any_json_object_is_accepted_or_rejected_never_failed(organization, payload):
    outcome = lead_intake(organization=organization, source="webhook", payload=payload)
    assert outcome.status in ("accepted", "duplicate", "rejected"), outcome.submission.error
    if outcome.status == "rejected":
        assert outcome.errors and all(
            isinstance(m, str) and m for messages in outcome.errors.values() for m in messages
        )
    else:
        assert outcome.lead.email or outcome.lead.phone


def test_usage_shows_the_month_against_the_quota(
    ingest_client, user_api_client, organization, django_capture_on_commit_callbacks
):
    SubscriptionFactory(organization=organization, plan=PlanFactory(monthly_lead_quota=4))
    with django_capture_on_commit_callbacks(execute=True):
        post(ingest_client)
    usage = user_api_client(Role.VIEWER).get("/api/v1/leads/usage/").json()
    assert (usage["count"], usage["quota"], usage["percent"], usage["over"]) == (1, 4, 25, False)


def test_usage_counts_one_organization(
    ingest_client, user_api_client, other_organization, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(ingest_client)
    theirs = user_api_client(Role.VIEWER, org=other_organization).get("/api/v1/leads/usage/").json()
    assert theirs["count"] == 0


def test_one_worker_pass_handles_a_burst_in_a_batch(organization, monkeypatch, django_assert_max_num_queries):
    monkeypatch.setattr(outbox, "_enqueue", lambda *args: None)  # the broker is slow: events pile up
    leads = [
        lead_intake(organization=organization, source="api", payload={"email": f"burst{n}@example.com"}).lead
        for n in range(20)
    ]
    first = OutboxEvent.objects.unscoped().get(payload__lead_id=leads[0].pk)
    with django_assert_max_num_queries(16):  # not per lead: lock, events, leads, rules, scores, usage, plan, marks
        assert outbox.outbox_handle(first.pk) is True
    assert not OutboxEvent.objects.unscoped().filter(organization=organization, handled_at__isnull=True).exists()
    assert all(
        score > 0
        for score in Lead.objects.unscoped().filter(pk__in=[lead.pk for lead in leads]).values_list("score", flat=True)
    )
    assert MonthlyLeadUsage.objects.unscoped().get(organization=organization).lead_count == 20
    # The tasks queued for the others find them handled and do nothing.
    assert outbox.outbox_handle(OutboxEvent.objects.unscoped().get(payload__lead_id=leads[5].pk).pk) is False


def test_a_burst_wakes_the_worker_once(
    organization, monkeypatch, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    """While a task for an organization's events is queued, further events of that topic queue no more tasks; the
    task clears its flag before reading, so events committed after it started wake the worker again."""
    from leads import tasks

    queued = []
    monkeypatch.setattr(tasks.handle_outbox_events, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            lead_intake(organization=organization, source="api", payload={"email": f"wake{n}@example.com"})
    assert queued == [(organization.pk, "lead.created")]

    # One batch for all five, not per event (with cold caches); messaging's automations read the organization's
    # lead-created rules once per batch (the 14th).
    with django_assert_max_num_queries(14):
        assert outbox.outbox_handle_pending(organization.pk, "lead.created") == 5
    assert not OutboxEvent.objects.unscoped().filter(organization=organization, handled_at__isnull=True).exists()
    with django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "wake-late@example.com"})
    assert queued == [(organization.pk, "lead.created")] * 2


@pytest.mark.django_db(transaction=True)
def test_intake_prepares_its_statements_again_when_the_connection_lost_them(organization):
    """The intake's fixed statements are prepared once per connection; a pooler or DISCARD ALL may drop them."""
    from django.db import connection

    first = lead_intake(organization=organization, source="api", payload={"email": "one@example.com"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'leadflow_%%'")
        assert cursor.fetchone()[0] >= 2  # the raw submission's INSERT and the new lead's statement
        cursor.execute("DEALLOCATE ALL")
    second = lead_intake(organization=organization, source="api", payload={"email": "two@example.com"})
    assert first.status == second.status == SubmissionStatus.ACCEPTED
    assert Lead.objects.unscoped().count() == 2


def test_a_worker_task_that_kept_up_handles_the_events_it_commits_itself(
    organization, monkeypatch, django_capture_on_commit_callbacks
):
    """A lead created inside a worker task that was not kept waiting (a Facebook fetch) is handled by that process
    after commit: counted and announced with no task queued for it. Behind a backlog (``enabled=False``), or if
    handling fails, a task is queued instead."""
    from leads import tasks

    queued = []
    monkeypatch.setattr(tasks.handle_outbox_events, "delay", lambda *args: queued.append(args))
    with outbox.outbox_handled_in_process(), django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "inline@example.com"})
    assert queued == []
    assert OutboxEvent.objects.unscoped().get(organization=organization).handled_at is not None
    assert MonthlyLeadUsage.objects.unscoped().get(organization=organization).lead_count == 1

    with outbox.outbox_handled_in_process(enabled=False), django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "backlog@example.com"})
    assert queued == [(organization.pk, "lead.created")]
    outbox.outbox_handle_pending(organization.pk, "lead.created")

    def broken(*args):
        raise RuntimeError("handler bug")

    monkeypatch.setattr(outbox, "outbox_handle_pending", broken)
    with outbox.outbox_handled_in_process(), django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "fallback@example.com"})
    assert queued == [(organization.pk, "lead.created")] * 2
