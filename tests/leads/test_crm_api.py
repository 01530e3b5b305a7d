"""The CRM API: lists (filters, search, keyset pages), who sees what, edits, stages, won/lost, notes, timeline, bulk
actions with audit, export, merge, pipeline stages and scoring rules."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.constants import Role
from accounts.models import AuditEvent
from leadflow.tenancy.context import organization_scope
from leads.models import InboundSubmission, Lead, LeadActivity, LeadNote, PipelineStage
from tests.conftest import member_of
from tests.factories import LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def stages(organization):
    with organization_scope(organization):
        return {stage.name: stage for stage in PipelineStage.objects.all()}


def test_list_is_newest_first_with_keyset_pages_and_no_count(manager_client, organization):
    leads = [LeadFactory(organization=organization) for _ in range(5)]
    for n, lead in enumerate(leads):
        Lead.objects.unscoped().filter(pk=lead.pk).update(received_at=timezone.now() - timedelta(minutes=n))
    page = manager_client.get("/api/v1/leads/", {"page_size": 2}).json()
    assert "count" not in page
    assert [row["id"] for row in page["results"]] == [leads[0].pk, leads[1].pk]
    second = manager_client.get(page["next"]).json()
    assert [row["id"] for row in second["results"]] == [leads[2].pk, leads[3].pk]
    assert "cursor=" in page["next"] and "offset" not in page["next"]


def test_filters(manager_client, organization, manager):
    s = stages(organization)
    hot = LeadFactory(
        organization=organization,
        source="facebook",
        stage=s["Qualified"],
        score=80,
        tags=["vip"],
        state="MH",
        owner=manager,
        utm_campaign="diwali",
    )
    cold = LeadFactory(organization=organization, source="csv", score=10, phone="", tags=[])
    old = LeadFactory(organization=organization, email="")
    Lead.objects.unscoped().filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=40))

    def ids(**params):
        response = manager_client.get("/api/v1/leads/", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(stage=s["Qualified"].pk) == {hot.pk}
    assert ids(source="csv") == {cold.pk}
    assert ids(owner=manager.pk) == ids(owner="me") == {hot.pk}
    assert ids(owner="none") == {cold.pk, old.pk}
    assert ids(tag="vip") == {hot.pk}
    assert ids(campaign="diwali") == {hot.pk}
    assert ids(score_min=50) == {hot.pk}
    assert ids(score_max=50) == {cold.pk, old.pk}
    assert ids(state="mh") == {hot.pk}
    assert ids(has_phone="false") == {cold.pk}
    assert ids(has_email="false") == {old.pk}
    assert ids(received_before=(timezone.now() - timedelta(days=30)).isoformat()) == {old.pk}
    assert ids(grade="cold") == {hot.pk, cold.pk, old.pk}  # grade is set by scoring, not the factory's score
    response = manager_client.get("/api/v1/leads/", {"score_min": "many"})
    assert response.status_code == 400 and "score_min" in response.json()["errors"]
    assert ids(stage=[s["Qualified"].pk, s["New"].pk]) == {hot.pk, cold.pk, old.pk}
    response = manager_client.get("/api/v1/leads/", {"stage": "qualified"})
    assert response.status_code == 400 and response.json()["errors"]["stage"] == ["Enter ids (whole numbers)."]


def test_another_organizations_stage_filters_to_nothing(manager_client, organization, other_organization):
    LeadFactory(organization=organization)
    theirs = stages(other_organization)["New"]
    LeadFactory(organization=other_organization, stage=theirs)
    response = manager_client.get("/api/v1/leads/", {"stage": theirs.pk})
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ("priya", True),
        ("Priya Sharma", True),
        ("sunrise", True),
        ("riya.sha", True),
        ("98123 45", True),
        ("45678", True),
        ("nobody", False),
    ],
)
def test_search_finds_names_email_phone_and_company(manager_client, organization, query, matches):
    lead = LeadFactory(
        organization=organization,
        full_name="Priya Sharma",
        email="priya.sharma@sunrise.in",
        phone="+919812345678",
        company="Sunrise Homes",
    )
    LeadFactory(
        organization=organization,
        full_name="Other Person",
        email="other@example.com",
        phone="+14155550100",
        company="Acme",
    )
    LeadFactory(organization=OrganizationFactory(), full_name="Priya Sharma", email="priya.sharma@sunrise.in")
    found = {row["id"] for row in manager_client.get("/api/v1/leads/", {"q": query}).json()["results"]}
    assert found == ({lead.pk} if matches else set())


def test_agents_see_and_touch_only_their_own_leads(api_client, organization):
    agent, other_agent = member_of(organization, Role.AGENT), member_of(organization, Role.AGENT)
    mine = LeadFactory(organization=organization, owner=agent)
    theirs = LeadFactory(organization=organization, owner=other_agent)
    queue = LeadFactory(organization=organization)
    api_client.force_authenticate(user=agent)
    listed = {row["id"] for row in api_client.get("/api/v1/leads/").json()["results"]}
    assert listed == {mine.pk}
    for lead in (theirs, queue):
        assert api_client.get(f"/api/v1/leads/{lead.pk}/").status_code == 404
        assert api_client.patch(f"/api/v1/leads/{lead.pk}/", {"company": "X"}, format="json").status_code == 404
        assert api_client.post(f"/api/v1/leads/{lead.pk}/notes/", {"body": "x"}, format="json").status_code == 404
    assert api_client.patch(f"/api/v1/leads/{mine.pk}/", {"company": "mine inc"}, format="json").status_code == 200
    # Agents cannot assign, bulk-edit, export or delete.
    assert (
        api_client.post(f"/api/v1/leads/{mine.pk}/assign/", {"owner": other_agent.pk}, format="json").status_code == 403
    )
    assert (
        api_client.post("/api/v1/leads/bulk/", {"action": "delete", "ids": [mine.pk]}, format="json").status_code == 403
    )
    assert api_client.get("/api/v1/leads/export/").status_code == 403
    assert api_client.delete(f"/api/v1/leads/{mine.pk}/").status_code == 403


def test_edit_normalizes_and_reports_field_errors(manager_client, organization):
    lead = LeadFactory(organization=organization)
    response = manager_client.patch(
        f"/api/v1/leads/{lead.pk}/",
        {"phone": "020 7946 0958", "country": "GB", "email": " NEW@Example.com"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["phone"] == "+442079460958" and response.json()["email"] == "new@example.com"
    bad = manager_client.patch(f"/api/v1/leads/{lead.pk}/", {"email": "nope", "phone": "1"}, format="json")
    assert bad.status_code == 400 and {"email", "phone"} <= set(bad.json()["errors"])
    lead.refresh_from_db()
    assert lead.email == "new@example.com"
    assert LeadActivity.objects.unscoped().filter(lead=lead, kind="updated").count() == 1


def test_manual_create_goes_through_intake(manager_client):
    response = manager_client.post("/api/v1/leads/", {"full_name": "walk in", "phone": "9876543210"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "manual" and response.json()["first_name"] == "Walk"
    bad = manager_client.post("/api/v1/leads/", {"full_name": "no contact", "email": "bad@"}, format="json")
    assert bad.status_code == 400 and "email" in bad.json()["errors"]
    rejected = InboundSubmission.objects.unscoped().get(source="manual", status="rejected")
    assert "bad@" in rejected.raw_body and "email" in rejected.error["errors"]


def test_stage_won_lost_notes_and_timeline(manager_client, organization, manager):
    s = stages(organization)
    lead = LeadFactory(organization=organization, deal_value="50000.00")
    url = f"/api/v1/leads/{lead.pk}/"
    assert manager_client.patch(url, {"stage": s["Contacted"].pk}, format="json").json()["stage"]["name"] == "Contacted"
    lead.refresh_from_db()
    assert lead.first_contacted_at is not None
    won = manager_client.post(url + "won/", {"amount": "65000", "date": "2026-11-20"}, format="json").json()
    assert (won["stage"]["name"], won["won_amount"], won["won_on"]) == ("Won", "65000.00", "2026-11-20")
    lost = manager_client.post(url + "lost/", {}, format="json")
    assert lost.status_code == 400 and "reason" in lost.json()["errors"]
    assert (
        manager_client.post(url + "lost/", {"reason": "Chose a competitor"}, format="json").json()["lost_reason"]
        == "Chose a competitor"
    )
    note = manager_client.post(url + "notes/", {"body": "Call back Monday"}, format="json")
    assert note.status_code == 201 and note.json()["author"]["id"] == manager.pk
    assert [n["body"] for n in manager_client.get(url + "notes/").json()] == ["Call back Monday"]
    kinds = [a["kind"] for a in manager_client.get(url + "timeline/").json()]
    assert kinds[:4] == ["note", "lost", "won", "stage_changed"]


def test_assign_only_to_members(manager_client, organization):
    lead = LeadFactory(organization=organization)
    agent = member_of(organization, Role.AGENT)
    outsider = member_of(OrganizationFactory(), Role.AGENT)
    viewer = member_of(organization, Role.VIEWER)
    url = f"/api/v1/leads/{lead.pk}/assign/"
    assert manager_client.post(url, {"owner": agent.pk}, format="json").json()["owner"]["id"] == agent.pk
    assert manager_client.post(url, {"owner": outsider.pk}, format="json").status_code == 400
    assert manager_client.post(url, {"owner": viewer.pk}, format="json").status_code == 400
    assert manager_client.post(url, {"owner": None}, format="json").json()["owner"] is None


def test_bulk_actions_are_audited(manager_client, organization):
    s = stages(organization)
    leads = [LeadFactory(organization=organization, tags=[]) for _ in range(3)]
    ids = [lead.pk for lead in leads]
    foreign = LeadFactory(organization=OrganizationFactory())
    response = manager_client.post(
        "/api/v1/leads/bulk/", {"action": "stage", "ids": [*ids, foreign.pk], "value": s["Qualified"].pk}, format="json"
    )
    assert response.json() == {"updated": 3}
    assert set(Lead.objects.unscoped().filter(pk__in=ids).values_list("stage__name", flat=True)) == {"Qualified"}
    assert manager_client.post(
        "/api/v1/leads/bulk/", {"action": "tag", "ids": ids, "value": ["Hot", "follow up"]}, format="json"
    ).json() == {"updated": 3}
    assert Lead.objects.unscoped().get(pk=ids[0]).tags == ["hot", "follow up"]
    manager_client.post("/api/v1/leads/bulk/", {"action": "untag", "ids": ids, "value": ["hot"]}, format="json")
    assert Lead.objects.unscoped().get(pk=ids[0]).tags == ["follow up"]
    bad = manager_client.post("/api/v1/leads/bulk/", {"action": "stage", "ids": ids, "value": 999999}, format="json")
    assert bad.status_code == 400 and "value" in bad.json()["errors"]
    assert manager_client.post("/api/v1/leads/bulk/", {"action": "delete", "ids": ids[:2]}, format="json").json() == {
        "updated": 2
    }
    assert set(Lead.objects.unscoped().filter(organization=organization).values_list("pk", flat=True)) == {ids[2]}
    assert Lead.objects.unscoped().filter(pk=foreign.pk).exists()
    actions = set(AuditEvent.objects.unscoped().filter(organization=organization).values_list("action", flat=True))
    assert {"leads.bulk_stage", "leads.bulk_tag", "leads.bulk_untag", "leads.bulk_delete", "lead.deleted"} <= actions


def test_export_streams_the_filtered_leads_as_csv(manager_client, organization):
    LeadFactory(organization=organization, source="facebook", email="fb@example.com", company="=HYPERLINK(1)")
    LeadFactory(organization=organization, source="csv", email="csv@example.com")
    response = manager_client.get("/api/v1/leads/export/", {"source": "facebook"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [row["email"] for row in rows] == ["fb@example.com"]
    assert rows[0]["company"].startswith("'=")  # no formula injection into spreadsheets


def test_merge_preview_and_merge_keep_everything(manager_client, organization):
    primary = LeadFactory(organization=organization, company="", city="Pune", tags=["a"])
    duplicate = LeadFactory(
        organization=organization, company="Sunrise", city="Mumbai", tags=["b"], duplicate_of=primary
    )
    LeadNote.objects.unscoped().create(organization=organization, lead=duplicate, body="from the duplicate")
    url = f"/api/v1/leads/{primary.pk}/"
    preview = manager_client.post(url + "merge-preview/", {"duplicates": [duplicate.pk]}, format="json").json()
    assert preview["company"]["value"] == "Sunrise" and preview["company"]["from"] == duplicate.pk
    assert preview["city"]["value"] == "Pune"
    merged = manager_client.post(
        url + "merge/", {"duplicates": [duplicate.pk], "choices": {"city": duplicate.pk}}, format="json"
    )
    assert merged.status_code == 200, merged.content
    body = merged.json()
    assert (body["company"], body["city"], sorted(body["tags"])) == ("Sunrise", "Mumbai", ["a", "b"])
    assert not Lead.objects.unscoped().filter(pk=duplicate.pk).exists()
    assert LeadNote.objects.unscoped().get(body="from the duplicate").lead_id == primary.pk
    assert AuditEvent.objects.unscoped().filter(action="lead.merged", target_id=str(primary.pk)).exists()
    foreign = LeadFactory(organization=OrganizationFactory())
    assert manager_client.post(url + "merge/", {"duplicates": [foreign.pk]}, format="json").status_code == 400


def test_pipeline_stages_are_configurable(user_api_client, organization):
    client = user_api_client(Role.ADMIN)
    created = client.post("/api/v1/pipeline-stages/", {"name": "Site visit", "kind": "open"}, format="json")
    assert created.status_code == 201
    assert client.post("/api/v1/pipeline-stages/", {"name": "site VISIT"}, format="json").status_code == 400
    names = [stage["name"] for stage in client.get("/api/v1/pipeline-stages/").json()]
    assert names == ["New", "Contacted", "Qualified", "Proposal", "Won", "Lost", "Site visit"]
    lead = LeadFactory(organization=organization, stage=stages(organization)["Site visit"])
    assert client.delete(f"/api/v1/pipeline-stages/{created.json()['id']}/").status_code == 204
    lead.refresh_from_db()
    assert lead.stage.name == "New"
    # The last open stage cannot go: new leads need somewhere to land.
    for name in ("Contacted", "Qualified", "Proposal"):
        assert client.delete(f"/api/v1/pipeline-stages/{stages(organization)[name].pk}/").status_code == 204
    response = client.delete(f"/api/v1/pipeline-stages/{stages(organization)['New'].pk}/")
    assert response.status_code == 400 and "open stage" in response.json()["detail"] + str(response.json()["errors"])


def test_list_query_count_does_not_grow(manager_client, organization, django_assert_max_num_queries):
    owner = member_of(organization, Role.AGENT)
    for _ in range(30):
        LeadFactory(organization=organization, owner=owner)
    with django_assert_max_num_queries(3):  # membership, stages for the filter form?, the page
        response = manager_client.get("/api/v1/leads/", {"page_size": 30})
    assert len(response.json()["results"]) == 30


def test_too_many_tags_is_a_field_error_not_a_crash(manager_client, organization):
    lead = LeadFactory(organization=organization)
    tags = [f"t{n}" for n in range(31)]
    response = manager_client.patch(f"/api/v1/leads/{lead.pk}/", {"tags": tags}, format="json")
    assert response.status_code == 400 and "tags" in response.json()["errors"]
    bulk = manager_client.post("/api/v1/leads/bulk/", {"action": "tag", "ids": [lead.pk], "value": tags}, format="json")
    assert bulk.status_code == 400 and "value" in bulk.json()["errors"]


def test_viewers_read_every_lead_but_change_none(user_api_client, organization):
    lead = LeadFactory(organization=organization)
    viewer = user_api_client(Role.VIEWER)
    assert lead.pk in {row["id"] for row in viewer.get("/api/v1/leads/").json()["results"]}
    assert viewer.patch(f"/api/v1/leads/{lead.pk}/", {"company": "X"}, format="json").status_code == 403


def test_the_fast_list_rows_match_the_declared_serializer(organization, manager):
    from rest_framework import serializers as drf

    from leads.api.serializers import LIST_VALUES, LeadListSerializer, lead_list_row

    lead = LeadFactory(
        organization=organization, owner=manager, deal_value="1234.50", first_contacted_at=timezone.now()
    )
    lead = Lead.objects.unscoped().select_related("stage", "owner").get(pk=lead.pk)
    fast = LeadListSerializer(lead).data
    slow = drf.ModelSerializer.to_representation(LeadListSerializer(), lead)
    assert dict(fast) == dict(slow)
    # The list endpoint builds its rows from dicts; they must say exactly the same, with and without an owner.
    original = LeadFactory(organization=organization, owner=None, full_name="", email="", phone="+919812345678")
    Lead.objects.unscoped().filter(pk=lead.pk).update(duplicate_of=original)
    for each in (lead, original):
        instance = Lead.objects.unscoped().select_related("stage", "owner").get(pk=each.pk)
        row = Lead.objects.unscoped().filter(pk=each.pk).values(*LIST_VALUES).get()
        assert lead_list_row(row) == dict(drf.ModelSerializer.to_representation(LeadListSerializer(), instance))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("asha@example.com", True),
        ("98123", True),
        ("Asha Verma", True),
        ("example.com", True),
        ("riya.sha", True),
        ("green.", False),
        ("asha", False),
        ("", False),
    ],
)
def test_needle_searches_collect_matches_from_the_search_indexes(text, needle):
    from leads.selectors import search_is_a_needle

    assert search_is_a_needle(text) is needle


def test_filtered_lists_do_not_ask_for_distinct_rows(manager_client, organization, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    s = stages(organization)
    LeadFactory(organization=organization, stage=s["Qualified"])
    with CaptureQueriesContext(connection) as queries:
        response = manager_client.get("/api/v1/leads/", {"stage": s["Qualified"].pk, "source": "api", "grade": "cold"})
    assert len(response.json()["results"]) == 1
    assert not any("DISTINCT" in query["sql"] for query in queries.captured_queries)


def _analyzed_leads_with_tags(organization) -> None:
    """300 leads tagged "follow-up", one of them also "plot"; then the table's statistics (inside the test's
    transaction: ANALYZE counts its own uncommitted rows, and the rollback takes the statistics away again)."""
    from django.db import connection

    from leads import selectors

    LeadFactory.create_batch(299, organization=organization, tags=["follow-up"])
    LeadFactory(organization=organization, tags=["follow-up", "plot"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")
    selectors._tag_statistics.forget()


def test_a_rare_tag_is_collected_from_the_tags_index_and_a_common_one_is_not(manager_client, organization, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leads import selectors
    from leads.selectors import search_plan, tags_are_rare

    # 300 leads stand for a big table: "rare" here is at most 100 of them.
    monkeypatch.setattr(selectors, "RARE_TAG_ROWS", 100)
    _analyzed_leads_with_tags(organization)
    assert tags_are_rare(["plot"]) is True
    assert tags_are_rare(["follow-up"]) is False
    assert tags_are_rare(["follow-up", "plot"]) is True  # leads with both are no more than those with "plot"
    assert tags_are_rare(["never-used"]) is True
    assert tags_are_rare([]) is False

    def index_scans_allowed(tags: str) -> str:
        with search_plan("", tags=tags), connection.cursor() as cursor:
            cursor.execute("SHOW enable_indexscan")
            return cursor.fetchone()[0]

    assert index_scans_allowed("follow-up") == "on"
    assert index_scans_allowed("") == "on"
    # Last: inside the test's own transaction, a SET LOCAL lasts until it ends (in a request, until the block's).
    assert index_scans_allowed("Plot") == "off"

    # Through the API, with the same answer either way.
    with CaptureQueriesContext(connection) as queries:
        response = manager_client.get("/api/v1/leads/", {"tag": "plot"})
    assert len(response.json()["results"]) == 1
    assert any("enable_indexscan = off" in query["sql"] for query in queries.captured_queries)
    assert len(manager_client.get("/api/v1/leads/", {"tag": "follow-up"}).json()["results"]) == 50


def test_without_statistics_the_default_plan_is_kept(monkeypatch):
    from leads import selectors

    monkeypatch.setattr(selectors, "_tag_statistics_load", lambda: None)
    selectors._tag_statistics.forget()
    assert selectors.tags_are_rare(["plot"]) is False
