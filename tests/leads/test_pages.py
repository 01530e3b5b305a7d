"""The server-rendered lead pages: list, board, detail, add, merge, import, export and the dashboard cards.

Every page is checked the same way the API is: it renders for a manager, an agent reaches only their own leads
(another's is a 404, on reads and writes alike), and another organization's rows are a 404.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.constants import Role
from accounts.models import AuditEvent
from leads.models import Lead, LeadActivity, LeadImport, LeadNote, MonthlyLeadUsage, PipelineStage
from leads.page_selectors import LIST_PAGE_SIZE, decode_cursor, duration_words
from leads.services.quota import month_start
from tests.conftest import member_of
from tests.factories import (
    LeadFactory,
    LeadImportFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def stage(organization, name: str) -> PipelineStage:
    return PipelineStage.objects.unscoped().get(organization=organization, name=name)


def reload(lead: Lead) -> Lead:
    return Lead.objects.unscoped().select_related("stage", "owner").get(pk=lead.pk)


def row_ids(response) -> set[int]:
    """The lead ids of the table rows on a list page (or its htmx fragment)."""
    import re

    return {int(pk) for pk in re.findall(r'id="lead-(\d+)"', response.content.decode())}


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def manager_page(signed_in, manager):
    return signed_in(manager)


@pytest.fixture
def agents(organization):
    """Two agents of the organization, each owning one lead."""
    alice, bob = member_of(organization, Role.AGENT), member_of(organization, Role.AGENT)
    return {
        "alice": alice,
        "bob": bob,
        "alice_lead": LeadFactory(organization=organization, owner=alice, full_name="Alice Lead"),
        "bob_lead": LeadFactory(organization=organization, owner=bob, full_name="Bob Lead"),
    }


# Every page renders ------------------------------------------------------------------------------------------------


def test_every_page_renders_for_a_manager(manager_page, organization, manager):
    lead = LeadFactory(
        organization=organization,
        custom={"budget": "45 lakh"},
        score_reasons=[{"points": 20, "label": "Valid phone number"}],
    )
    LeadFactory(organization=organization, duplicate_of=lead, email=lead.email)
    uploaded = LeadImportFactory(organization=organization, created_by=manager)
    finished = LeadImportFactory(organization=organization, status="completed", processed_rows=1, created_count=1)
    urls = [
        "/leads/",
        "/leads/board/",
        "/leads/new/",
        f"/leads/{lead.pk}/",
        f"/leads/{lead.pk}/row/",
        f"/leads/{lead.pk}/merge/",
        "/leads/imports/",
        f"/leads/imports/{uploaded.pk}/",
        f"/leads/imports/{finished.pk}/progress/",
        f"/leads/imports/{finished.pk}/status/",
        "/leads/export.csv",
        "/dashboard/",
    ]
    for url in urls:
        response = manager_page.get(url)
        assert response.status_code == 200, (url, response.status_code)
    detail = manager_page.get(f"/leads/{lead.pk}/").content.decode()
    assert "45 lakh" in detail and "Valid phone number" in detail and "Merge them into this lead" in detail


def test_the_navigation_links_to_the_leads_pages(manager_page):
    assert 'href="/leads/"' in manager_page.get("/dashboard/").content.decode()


def test_signed_out_visitors_are_sent_to_log_in(client, organization):
    lead = LeadFactory(organization=organization)
    for url in ("/leads/", f"/leads/{lead.pk}/", "/leads/board/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# List: filters, search, pages, queries ------------------------------------------------------------------------------


def test_list_filters_and_search(manager_page, organization, manager):
    now = timezone.now()
    asha = LeadFactory(
        organization=organization, full_name="Asha Verma", source="facebook", tags=["vip"], grade="hot", score=80
    )
    ravi = LeadFactory(organization=organization, full_name="Ravi Kumar", source="csv", owner=manager, tags=[])
    old = LeadFactory(organization=organization, full_name="Old Timer", received_at=now - timedelta(days=40))
    duplicate = LeadFactory(organization=organization, full_name="Asha Again", duplicate_of=asha)
    qualified = stage(organization, "Qualified")
    Lead.objects.unscoped().filter(pk=ravi.pk).update(stage=qualified)
    everyone = {asha.pk, ravi.pk, old.pk, duplicate.pk}

    def ids(query):
        response = manager_page.get(f"/leads/?{query}")
        assert response.status_code == 200
        return row_ids(response)

    assert ids("") == everyone
    assert ids("q=asha") == {asha.pk, duplicate.pk}
    assert ids(f"q={ravi.email}") == {ravi.pk}
    assert ids(f"stage={qualified.pk}") == {ravi.pk}
    assert ids("source=facebook") == {asha.pk}
    assert ids(f"owner={manager.pk}") == {ravi.pk} == ids("owner=me")
    assert ids("owner=none") == everyone - {ravi.pk}
    assert ids("tag=vip") == {asha.pk}
    assert ids("grade=hot") == {asha.pk}
    assert ids("duplicates=only") == {duplicate.pk}
    assert ids("duplicates=exclude") == everyone - {duplicate.pk}
    local_today = timezone.localdate(now, timezone=__import__("zoneinfo").ZoneInfo(organization.timezone))
    window = (local_today - timedelta(days=50)).isoformat(), (local_today - timedelta(days=30)).isoformat()
    assert ids(f"received_after={window[0]}&received_before={window[1]}") == {old.pk}
    # "to" is inclusive: today's leads are in a range that ends today.
    assert asha.pk in ids(f"received_before={local_today.isoformat()}")


def test_empty_filter_fields_mean_no_filter(manager_page, organization):
    leads = LeadFactory.create_batch(2, organization=organization)
    response = manager_page.get("/leads/?q=&stage=&source=&owner=&tag=&grade=&duplicates=&received_after=")
    assert row_ids(response) == {lead.pk for lead in leads}
    assert not response.context["filter_errors"] and response.context["live"]


def test_filtering_with_htmx_swaps_only_the_results(manager_page, organization):
    lead = LeadFactory(organization=organization, full_name="Meena Iyer")
    LeadFactory(organization=organization, full_name="Someone Else")
    response = manager_page.get("/leads/?q=meena", HTTP_HX_TARGET="lead-results", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="lead-results"') and "<html" not in body
    assert row_ids(response) == {lead.pk}
    assert "HX-Request" in response["Vary"]
    # Filtered, so new leads are not pushed into this table.
    assert 'data-live=""' in body
    assert 'data-live="1"' in manager_page.get("/leads/").content.decode()


def test_keyset_pages_have_no_offset_and_no_count(manager_page, organization):
    now = timezone.now()
    leads = [
        LeadFactory(organization=organization, received_at=now - timedelta(minutes=i))
        for i in range(LIST_PAGE_SIZE + 5)
    ]
    with CaptureQueriesContext(connection) as queries:
        first = manager_page.get("/leads/")
    assert not any("OFFSET" in q["sql"] or "COUNT(*)" in q["sql"] for q in queries.captured_queries)
    assert row_ids(first) == {lead.pk for lead in leads[:LIST_PAGE_SIZE]}
    cursor = first.context["page"].next_cursor
    assert decode_cursor(cursor)[1] == leads[LIST_PAGE_SIZE - 1].pk
    assert "Older →" in first.content.decode()
    second = manager_page.get("/leads/", {"cursor": cursor})
    assert row_ids(second) == {lead.pk for lead in leads[LIST_PAGE_SIZE:]}
    assert "Older →" not in second.content.decode() and "← Newest" in second.content.decode()
    assert 'data-live=""' in second.content.decode()  # not the first page: no live rows
    # A tampered cursor is the first page, not an error.
    assert row_ids(manager_page.get("/leads/", {"cursor": "bm9wZQ"})) == row_ids(first)


def test_leads_with_the_same_time_are_paged_by_id(manager_page, organization):
    moment = timezone.now()
    leads = [LeadFactory(organization=organization, received_at=moment) for _ in range(LIST_PAGE_SIZE + 2)]
    first = manager_page.get("/leads/")
    second = manager_page.get("/leads/", {"cursor": first.context["page"].next_cursor})
    assert row_ids(first) | row_ids(second) == {lead.pk for lead in leads}
    assert not row_ids(first) & row_ids(second)


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/leads/").status_code == 200
    return len(queries.captured_queries)


def test_the_list_page_uses_a_bounded_number_of_queries(manager_page, organization, django_assert_max_num_queries):
    agent = member_of(organization, Role.AGENT)
    LeadFactory.create_batch(3, organization=organization, owner=agent)
    manager_page.get("/leads/")  # the first request of a session also writes the session
    few = _list_queries(manager_page)
    LeadFactory.create_batch(40, organization=organization, owner=agent, tags=["a", "b"])
    original = LeadFactory(organization=organization)
    LeadFactory.create_batch(5, organization=organization, duplicate_of=original)
    with django_assert_max_num_queries(10):
        manager_page.get("/leads/")
    assert _list_queries(manager_page) == few  # no query per row


# Agents and other organizations --------------------------------------------------------------------------------------


def test_an_agent_sees_only_their_own_leads(signed_in, organization, agents):
    page = signed_in(agents["alice"])
    mine, theirs = agents["alice_lead"], agents["bob_lead"]
    assert row_ids(page.get("/leads/")) == {mine.pk}
    assert row_ids(page.get("/leads/?owner=none")) == set()
    board = page.get("/leads/board/").content.decode()
    assert f'id="card-{mine.pk}"' in board and f'id="card-{theirs.pk}"' not in board
    assert page.get(f"/leads/{mine.pk}/").status_code == 200
    assert page.get(f"/leads/{theirs.pk}/").status_code == 404
    assert page.get(f"/leads/{theirs.pk}/row/").status_code == 404
    # Export, bulk actions, merge and imports are for managers.
    assert page.get("/leads/export.csv").status_code == 403
    assert page.get("/leads/imports/").status_code == 403
    assert page.post("/leads/bulk/", {"action": "delete", "ids": [theirs.pk]}).status_code == 403
    assert page.get(f"/leads/{mine.pk}/merge/").status_code == 403


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("stage", {"stage": "CONTACTED"}),
        ("move", {"stage": "CONTACTED"}),
        ("notes", {"body": "Sneaky"}),
        ("tags", {"add": "sneaky"}),
        ("won", {"won-amount": "10"}),
        ("lost", {"lost-reason": "Sneaky"}),
        ("edit", {"edit-email": "sneaky@example.com"}),
    ],
)
def test_an_agent_cannot_work_another_agents_lead(signed_in, organization, agents, path, data):
    contacted = stage(organization, "Contacted")
    data = {key: contacted.pk if value == "CONTACTED" else value for key, value in data.items()}
    theirs = agents["bob_lead"]
    response = signed_in(agents["alice"]).post(f"/leads/{theirs.pk}/{path}/", data, **HTMX)
    assert response.status_code == 404
    after = reload(theirs)
    assert (after.stage.name, after.tags, after.email) == ("New", theirs.tags, theirs.email)
    assert not LeadNote.objects.unscoped().filter(lead=theirs).exists()


def test_a_member_of_another_organization_gets_404(signed_in, organization, manager):
    lead = LeadFactory(organization=organization)
    lead_import = LeadImportFactory(organization=organization)
    elsewhere = OrganizationFactory()
    outsider = member_of(elsewhere, Role.OWNER)
    page = signed_in(outsider)
    for url in (
        f"/leads/{lead.pk}/",
        f"/leads/{lead.pk}/row/",
        f"/leads/{lead.pk}/merge/",
        f"/leads/imports/{lead_import.pk}/",
        f"/leads/imports/{lead_import.pk}/progress/",
        f"/leads/imports/{lead_import.pk}/errors.csv",
    ):
        assert page.get(url).status_code == 404, url
    own_stage = stage(elsewhere, "Contacted")
    for path, data in (("stage", {"stage": own_stage.pk}), ("notes", {"body": "x"}), ("delete", {})):
        assert page.post(f"/leads/{lead.pk}/{path}/", data).status_code == 404
    assert row_ids(page.get("/leads/")) == set()
    assert page.post("/leads/bulk/", {"action": "delete", "ids": [lead.pk]}).status_code == 302
    assert Lead.objects.unscoped().filter(pk=lead.pk).exists()


# Adding a lead ---------------------------------------------------------------------------------------------------


def test_manual_add_creates_a_lead_through_the_pipeline(
    manager_page, organization, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_page.post(
            "/leads/new/",
            {
                "full_name": "Asha Verma",
                "email": " ASHA@Example.com ",
                "phone": "98765 43210",
                "city": "Pune",
                "tags": "Walk-in, VIP",
                "deal_value": "250000",
            },
        )
    lead = Lead.objects.unscoped().get(organization=organization)
    assert response.status_code == 302 and response["Location"] == f"/leads/{lead.pk}/"
    assert (lead.source, lead.email, lead.phone, lead.first_name, lead.tags, lead.deal_value) == (
        "manual",
        "asha@example.com",
        "+919876543210",
        "Asha",
        ["walk-in", "vip"],
        Decimal("250000.00"),
    )
    assert lead.score > 0  # the outbox handlers ran: scored like every other lead
    assert LeadActivity.objects.unscoped().filter(lead=lead, kind="created", actor=manager).exists()


def test_manual_add_shows_field_errors_and_creates_nothing(manager_page, organization):
    response = manager_page.post("/leads/new/", {"full_name": "Bad Data", "email": "not-an-email", "phone": "12"})
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors["email"] and form.errors["phone"]
    assert "field-error" in response.content.decode()
    assert not Lead.objects.unscoped().filter(organization=organization).exists()
    # No way to reach them at all is a form-level error.
    response = manager_page.post("/leads/new/", {"full_name": "Nobody"})
    assert response.status_code == 400 and "email address or a phone number" in str(
        response.context["form"].non_field_errors()
    )
    assert not Lead.objects.unscoped().filter(organization=organization).exists()


def test_manual_add_of_a_known_person_saves_a_duplicate(manager_page, organization):
    original = LeadFactory(organization=organization, full_name="First Time", email="again@example.com")
    response = manager_page.post("/leads/new/", {"full_name": "Second Time", "email": "again@example.com"}, follow=True)
    duplicate = Lead.objects.unscoped().get(organization=organization, duplicate_of=original)
    assert response.redirect_chain[-1][0] == f"/leads/{duplicate.pk}/"
    body = response.content.decode()
    assert "duplicate of First Time" in body and f"lead #{original.pk}" in body
    assert f'href="/leads/{original.pk}/"' in body  # the detail page links to the original


def test_an_agent_adding_a_lead_routed_elsewhere_lands_on_the_list(signed_in, organization):
    agent = member_of(organization, Role.AGENT)
    response = signed_in(agent).post("/leads/new/", {"full_name": "Not Mine", "email": "notmine@example.com"})
    assert response.status_code == 302 and response["Location"] == "/leads/"
    assert Lead.objects.unscoped().filter(email="notmine@example.com", owner__isnull=True).exists()


def test_viewers_cannot_add_leads(signed_in, organization):
    viewer = member_of(organization, Role.VIEWER)
    assert signed_in(viewer).post("/leads/new/", {"email": "x@example.com"}).status_code == 403


# Bulk actions ----------------------------------------------------------------------------------------------------


def test_bulk_stage_change_moves_the_leads_and_is_audited(manager_page, organization, manager):
    leads = LeadFactory.create_batch(3, organization=organization)
    untouched = LeadFactory(organization=organization)
    qualified = stage(organization, "Qualified")
    response = manager_page.post(
        "/leads/bulk/",
        {"action": "stage", "ids": [lead.pk for lead in leads], "stage": qualified.pk, "query": "q=&stage="},
        HTTP_HX_TARGET="lead-results",
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="lead-results"') and "Move to stage: 3 leads done." in body
    assert {reload(lead).stage_id for lead in leads} == {qualified.pk}
    assert reload(untouched).stage.name == "New"
    event = AuditEvent.objects.unscoped().get(organization=organization, action="leads.bulk_stage")
    assert event.actor_user == manager
    assert sorted(event.changes["leads"][1]) == sorted(lead.pk for lead in leads)


def test_bulk_assign_tag_untag_and_delete(manager_page, organization):
    agent = member_of(organization, Role.AGENT)
    first, second = LeadFactory.create_batch(2, organization=organization, tags=["old"])
    ids = [first.pk, second.pk]
    post = manager_page.post
    assert post("/leads/bulk/", {"action": "assign", "ids": ids, "owner": agent.pk}).status_code == 302
    assert {reload(lead).owner_id for lead in (first, second)} == {agent.pk}
    post("/leads/bulk/", {"action": "assign", "ids": ids, "owner": "none"})
    assert {reload(lead).owner_id for lead in (first, second)} == {None}
    post("/leads/bulk/", {"action": "tag", "ids": ids, "tags": "Expo, hot lead"})
    assert reload(first).tags == ["old", "expo", "hot lead"]
    post("/leads/bulk/", {"action": "untag", "ids": ids, "tags": "old"})
    assert reload(second).tags == ["expo", "hot lead"]
    response = post("/leads/bulk/", {"action": "delete", "ids": [first.pk], "query": "source=api"})
    assert response["Location"] == "/leads/?source=api"
    assert not Lead.objects.unscoped().filter(pk=first.pk).exists()
    assert AuditEvent.objects.unscoped().filter(organization=organization, action="leads.bulk_delete").exists()


def test_bulk_action_errors_are_shown(manager_page, organization):
    lead = LeadFactory(organization=organization)
    response = manager_page.post("/leads/bulk/", {"action": "stage", "ids": [lead.pk]}, **HTMX)
    assert response.status_code == 200 and "Pick a stage." in response.content.decode()
    response = manager_page.post("/leads/bulk/", {"action": "tag", "tags": "x"}, **HTMX)
    assert "Select at least one lead." in response.content.decode()


# Board -----------------------------------------------------------------------------------------------------------


def test_board_shows_a_column_per_stage_and_caps_counts(manager_page, organization):
    now = timezone.now()
    LeadFactory.create_batch(52, organization=organization, received_at=now)
    won = LeadFactory(organization=organization, stage=stage(organization, "Won"))
    original = LeadFactory(organization=organization, stage=stage(organization, "Won"))
    hidden_duplicate = LeadFactory(organization=organization, duplicate_of=original)
    response = manager_page.get("/leads/board/")
    columns = {column.stage.name: column for column in response.context["columns"]}
    assert list(columns) == ["New", "Contacted", "Qualified", "Proposal", "Won", "Lost"]
    assert (len(columns["New"].leads), columns["New"].count_label) == (50, "50+")
    assert {lead.pk for lead in columns["Won"].leads} == {won.pk, original.pk}
    assert f'id="card-{hidden_duplicate.pk}"' not in response.content.decode()


def test_board_move_changes_the_stage(manager_page, organization, manager):
    lead = LeadFactory(organization=organization)
    proposal = stage(organization, "Proposal")
    response = manager_page.post(f"/leads/{lead.pk}/move/", {"stage": proposal.pk})
    assert response.status_code == 200
    assert response.json() == {"id": lead.pk, "stage": proposal.pk, "stage_name": "Proposal"}
    after = reload(lead)
    assert after.stage == proposal and after.first_contacted_at is not None
    assert LeadActivity.objects.unscoped().filter(lead=lead, kind="stage_changed", actor=manager).exists()


def test_board_move_to_a_stage_of_another_organization_is_refused(manager_page, organization):
    lead = LeadFactory(organization=organization)
    foreign = stage(OrganizationFactory(), "Won")
    response = manager_page.post(f"/leads/{lead.pk}/move/", {"stage": foreign.pk})
    assert response.status_code == 400 and "stage" in response.json()["error"]
    assert reload(lead).stage.name == "New"


def test_board_move_needs_csrf(client, organization, manager):
    from django.test import Client

    lead = LeadFactory(organization=organization)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(manager)
    assert strict.post(f"/leads/{lead.pk}/move/", {"stage": stage(organization, "Won").pk}).status_code == 403
    assert reload(lead).stage.name == "New"


# Working a lead on its page ----------------------------------------------------------------------------------------


def test_stage_select_swaps_its_section_and_the_timeline(signed_in, organization, agents):
    lead = agents["alice_lead"]
    response = signed_in(agents["alice"]).post(
        f"/leads/{lead.pk}/stage/", {"stage": stage(organization, "Contacted").pk}, **HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="lead-stage"')
    assert "Saved" in body and 'hx-swap-oob="true"' in body and "New → Contacted" in body
    assert reload(lead).stage.name == "Contacted"


def test_notes_and_tags(signed_in, organization, agents):
    lead = agents["alice_lead"]
    page = signed_in(agents["alice"])
    response = page.post(f"/leads/{lead.pk}/notes/", {"body": "Called, wants a site visit"}, **HTMX)
    assert response.status_code == 200 and "Called, wants a site visit" in response.content.decode()
    assert LeadNote.objects.unscoped().get(lead=lead).author == agents["alice"]
    empty = page.post(f"/leads/{lead.pk}/notes/", {"body": "  "}, **HTMX)
    assert "field-error" in empty.content.decode() and LeadNote.objects.unscoped().filter(lead=lead).count() == 1

    response = page.post(f"/leads/{lead.pk}/tags/", {"add": "Site Visit, Budget OK"}, **HTMX)
    assert response.status_code == 200 and "site visit" in response.content.decode()
    assert reload(lead).tags == [*lead.tags, "site visit", "budget ok"]
    page.post(f"/leads/{lead.pk}/tags/", {"remove": "site visit"}, **HTMX)
    assert reload(lead).tags == [*lead.tags, "budget ok"]
    too_many = page.post(f"/leads/{lead.pk}/tags/", {"add": ",".join(f"t{i}" for i in range(40))}, **HTMX)
    assert "At most 30 tags" in too_many.content.decode()
    # Without JavaScript the same forms redirect back with a message.
    response = page.post(f"/leads/{lead.pk}/notes/", {"body": "Plain post"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/leads/{lead.pk}/" and "Note added." in response.content.decode()


def test_won_and_lost(signed_in, organization, agents):
    page = signed_in(agents["alice"])
    lead = agents["alice_lead"]
    response = page.post(f"/leads/{lead.pk}/won/", {"won-amount": "125000", "won-won_on": "2026-11-20"})
    assert response.status_code == 302
    after = reload(lead)
    assert (after.stage.kind, after.won_amount, after.won_on.isoformat()) == ("won", Decimal("125000"), "2026-11-20")

    other = LeadFactory(organization=organization, owner=agents["alice"])
    missing = page.post(f"/leads/{other.pk}/lost/", {"lost-reason": ""})
    assert missing.status_code == 400 and missing.context["lost_form"].errors["reason"]
    assert reload(other).stage.kind == "open"
    page.post(f"/leads/{other.pk}/lost/", {"lost-reason": "Bought elsewhere"})
    after = reload(other)
    assert (after.stage.kind, after.lost_reason) == ("lost", "Bought elsewhere")
    negative = page.post(f"/leads/{other.pk}/won/", {"won-amount": "-5"})
    assert negative.status_code == 400


def test_edit_saves_contact_fields_and_shows_errors(signed_in, organization, agents):
    page = signed_in(agents["alice"])
    lead = agents["alice_lead"]
    data = {
        f"edit-{name}": value for name, value in page.get(f"/leads/{lead.pk}/").context["edit_form"].initial.items()
    }
    data = {key: "" if value is None else value for key, value in data.items()}
    response = page.post(f"/leads/{lead.pk}/edit/", {**data, "edit-phone": "+91 99887 66554", "edit-city": "Pune"})
    assert response.status_code == 302
    after = reload(lead)
    assert (after.phone, after.city, after.email) == ("+919988766554", "Pune", lead.email)
    bad = page.post(f"/leads/{lead.pk}/edit/", {**data, "edit-email": "nope"})
    assert bad.status_code == 400 and bad.context["edit_form"].errors["email"]
    assert reload(lead).email == lead.email


def test_managers_assign_and_delete(manager_page, signed_in, organization, agents):
    lead = agents["alice_lead"]
    response = manager_page.post(f"/leads/{lead.pk}/owner/", {"owner": agents["bob"].pk}, **HTMX)
    assert response.status_code == 200 and "Saved" in response.content.decode()
    assert reload(lead).owner == agents["bob"]
    viewer = member_of(organization, Role.VIEWER)
    refused = manager_page.post(f"/leads/{lead.pk}/owner/", {"owner": viewer.pk}, **HTMX)
    assert "field-error" in refused.content.decode() and reload(lead).owner == agents["bob"]
    # Agents neither assign nor delete.
    bob = signed_in(agents["bob"])
    assert bob.post(f"/leads/{lead.pk}/owner/", {"owner": "none"}).status_code == 403
    assert bob.post(f"/leads/{lead.pk}/delete/").status_code == 403
    response = signed_in(Lead.objects.unscoped().get(pk=lead.pk).owner).get(f"/leads/{lead.pk}/")
    assert response.status_code == 200 and 'data-testid="owner-select"' not in response.content.decode()
    manager = member_of(organization, Role.MANAGER)
    assert signed_in(manager).post(f"/leads/{lead.pk}/delete/").status_code == 302
    assert not Lead.objects.unscoped().filter(pk=lead.pk).exists()


# Merge -------------------------------------------------------------------------------------------------------------


def test_merge_page_previews_and_merges(manager_page, organization, manager):
    primary = LeadFactory(
        organization=organization, full_name="Asha Verma", email="asha@example.com", city="", tags=["a"]
    )
    duplicate = LeadFactory(
        organization=organization,
        full_name="Asha V",
        email="asha.work@example.com",
        city="Pune",
        tags=["b"],
        duplicate_of=primary,
    )
    LeadNote.objects.create(organization=organization, lead=duplicate, body="Prefers WhatsApp")
    page = manager_page.get(f"/leads/{primary.pk}/merge/?with={duplicate.pk}")
    assert page.status_code == 200
    body = page.content.decode()
    assert "asha.work@example.com" in body and "Pune" in body
    # The preview's choice is preselected: the primary's email, the duplicate's city (the primary has none).
    form = page.context["form"]
    assert (form["email"].initial, form["city"].initial) == (str(primary.pk), str(duplicate.pk))

    response = manager_page.post(
        f"/leads/{primary.pk}/merge/", {"with": str(duplicate.pk), "email": duplicate.pk, "city": duplicate.pk}
    )
    assert response.status_code == 302 and response["Location"] == f"/leads/{primary.pk}/"
    merged = reload(primary)
    assert (merged.email, merged.city, sorted(merged.tags)) == ("asha.work@example.com", "Pune", ["a", "b"])
    assert not Lead.objects.unscoped().filter(pk=duplicate.pk).exists()
    assert LeadNote.objects.unscoped().get(body="Prefers WhatsApp").lead_id == primary.pk
    assert AuditEvent.objects.unscoped().filter(organization=organization, action="lead.merged").exists()


def test_merge_defaults_to_the_leads_duplicates_and_refuses_unknown_ids(manager_page, organization):
    primary = LeadFactory(organization=organization)
    duplicates = LeadFactory.create_batch(2, organization=organization, duplicate_of=primary)
    page = manager_page.get(f"/leads/{primary.pk}/merge/")
    assert {lead.pk for lead in page.context["duplicates"]} == {lead.pk for lead in duplicates}
    foreign = LeadFactory(organization=OrganizationFactory())
    assert manager_page.get(f"/leads/{primary.pk}/merge/?with={foreign.pk}").status_code == 404
    lonely = LeadFactory(organization=organization)
    assert "Nothing to merge yet" in manager_page.get(f"/leads/{lonely.pk}/merge/").content.decode()


# Import wizard -----------------------------------------------------------------------------------------------------

CSV = (
    "Full Name,E-mail,Mobile,City,Budget\n"
    "Asha Verma,asha@example.com,98765 43210,Pune,45 lakh\n"
    "Ravi Kumar,not-an-email,,Mumbai,\n"
    "Meena Iyer,meena@example.com,+91 99887 66554,Chennai,30 lakh\n"
    "Asha again,ASHA@example.com,,Pune,\n"
)


def test_import_upload_map_start_progress_and_error_report(
    manager_page, organization, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("expo.csv", CSV.encode(), content_type="text/csv")
    response = manager_page.post("/leads/imports/", {"file": upload})
    lead_import = LeadImport.objects.unscoped().get(organization=organization)
    assert response.status_code == 302 and response["Location"] == f"/leads/imports/{lead_import.pk}/"

    mapping_page = manager_page.get(response["Location"])
    body = mapping_page.content.decode()
    assert "Asha Verma" in body and "45 lakh" in body  # the preview
    form = mapping_page.context["form"]
    initial = {field.label: field.initial for field in form.column_fields()}
    assert initial == {
        "Full Name": "full_name",
        "E-mail": "email",
        "Mobile": "phone",
        "City": "city",
        "Budget": "custom",
    }

    # Nothing to reach them by is refused on the form.
    refused = manager_page.post(response["Location"], {"column_0": "full_name", "column_1": "", "column_2": ""})
    assert refused.status_code == 400 and "email or phone" in str(refused.context["form"].non_field_errors())

    data = {f"column_{i}": value for i, value in enumerate(["full_name", "email", "phone", "city", "custom"])}
    with django_capture_on_commit_callbacks(execute=True):
        started = manager_page.post(response["Location"], {**data, "tags": "Expo 2026"})
    assert started.status_code == 302 and started["Location"] == f"/leads/imports/{lead_import.pk}/progress/"

    progress = manager_page.get(started["Location"])
    lead_import.refresh_from_db()
    assert (lead_import.status, lead_import.created_count, lead_import.duplicate_count, lead_import.error_count) == (
        "completed",
        2,
        1,
        1,
    )
    body = progress.content.decode()
    assert "Download error report" in body and 'value="100"' in body
    assert 'hx-trigger="every 2s"' not in body  # finished: the poll stops
    assert Lead.objects.unscoped().get(email="meena@example.com").tags == ["expo 2026"]

    report = manager_page.get(f"/leads/imports/{lead_import.pk}/errors.csv")
    rows = list(csv.DictReader(io.StringIO(report.content.decode())))
    assert report["Content-Type"].startswith("text/csv")
    assert len(rows) == 1 and rows[0]["Full Name"] == "Ravi Kumar" and "email" in rows[0]["errors"]
    # Once started, the mapping page (and a second click on "Import") sends people to the progress page.
    assert manager_page.get(f"/leads/imports/{lead_import.pk}/")["Location"].endswith("/progress/")
    assert manager_page.post(f"/leads/imports/{lead_import.pk}/", data)["Location"].endswith("/progress/")
    assert "expo.csv" in manager_page.get("/leads/imports/").content.decode()


def test_running_import_polls_its_status(manager_page, organization):
    running = LeadImportFactory(organization=organization, status="running", total_rows=10, processed_rows=4)
    body = manager_page.get(f"/leads/imports/{running.pk}/status/").content.decode()
    assert 'hx-trigger="every 2s"' in body and 'value="40"' in body and "Download error report" not in body


def test_bad_upload_shows_the_reason(manager_page, organization):
    empty = SimpleUploadedFile("empty.csv", b"name,email\n", content_type="text/csv")
    response = manager_page.post("/leads/imports/", {"file": empty})
    assert response.status_code == 400 and "no leads" in response.content.decode()
    assert not LeadImport.objects.unscoped().filter(organization=organization).exists()


# Export ------------------------------------------------------------------------------------------------------------


def test_export_streams_only_visible_filtered_leads(manager_page, organization):
    facebook = LeadFactory(organization=organization, source="facebook", email="fb@example.com")
    LeadFactory(organization=organization, source="csv", email="csv@example.com")
    LeadFactory(organization=OrganizationFactory(), source="facebook", email="elsewhere@example.com")
    response = manager_page.get("/leads/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert {row["email"] for row in rows} == {"fb@example.com", "csv@example.com"}
    filtered = manager_page.get("/leads/export.csv?source=facebook")
    rows = list(csv.DictReader(io.StringIO(b"".join(filtered.streaming_content).decode("utf-8-sig"))))
    assert [int(row["id"]) for row in rows] == [facebook.pk]


# Live rows and the dashboard ---------------------------------------------------------------------------------------


def test_row_fragment_for_live_updates(signed_in, organization, agents):
    page = signed_in(agents["alice"])
    mine = agents["alice_lead"]
    response = page.get(f"/leads/{mine.pk}/row/", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith(f'<tr id="lead-{mine.pk}"') and "is-new" in body
    assert page.get(f"/leads/{agents['bob_lead'].pk}/row/", **HTMX).status_code == 404
    # An agent's table only takes live rows for leads routed to them.
    assert f'data-live-owner="{agents["alice"].pk}"' in page.get("/leads/").content.decode()


def test_dashboard_lead_cards(manager_page, organization):
    now = timezone.now()
    LeadFactory.create_batch(2, organization=organization, source="facebook")
    contacted = LeadFactory(organization=organization, source="form", received_at=now - timedelta(minutes=30))
    Lead.objects.unscoped().filter(pk=contacted.pk).update(first_contacted_at=now - timedelta(minutes=18))
    plan = PlanFactory(monthly_lead_quota=10)
    SubscriptionFactory(organization=organization, plan=plan)
    MonthlyLeadUsage.objects.create(organization=organization, month=month_start(organization), lead_count=12)
    response = manager_page.get("/dashboard/")
    cards = response.context["leads"]
    assert (cards["today"], cards["unassigned"], cards["speed_to_lead"]) == (3, 3, "12 min")
    assert [(row["source"], row["count"], row["percent"]) for row in cards["by_source"]] == [
        ("facebook", 2, 100),
        ("form", 1, 50),
    ]
    body = response.content.decode()
    assert 'data-testid="over-quota"' in body and "12</strong> of 10" in body


def test_an_agents_dashboard_counts_their_own_leads(signed_in, organization, agents):
    LeadFactory.create_batch(3, organization=organization)
    response = signed_in(agents["alice"]).get("/dashboard/")
    assert response.context["leads"]["today"] == 1
    assert "Unassigned" not in response.content.decode()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(None, "—"), (42, "42 s"), (600, "10 min"), (3600, "1 h"), (3900, "1 h 5 min"), (90000, "1 d 1 h")],
)
def test_duration_words(seconds, words):
    assert duration_words(seconds) == words
