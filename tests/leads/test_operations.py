"""Operators: the admin pages for leads, replay from the admin, the beat tasks, default pipelines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leads import tasks
from leads.constants import SubmissionStatus
from leads.models import InboundSubmission, Lead, MonthlyLeadUsage, OutboxEvent, PipelineStage
from tests.factories import InboundSubmissionFactory, LeadFactory, LeadImportFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_new_organizations_get_the_default_pipeline():
    organization = OrganizationFactory()
    stages = list(PipelineStage.objects.unscoped().filter(organization=organization).values_list("name", "kind"))
    assert stages == [
        ("New", "open"),
        ("Contacted", "open"),
        ("Qualified", "open"),
        ("Proposal", "open"),
        ("Won", "won"),
        ("Lost", "lost"),
    ]


@pytest.mark.parametrize(
    "model",
    [
        "lead",
        "inboundsubmission",
        "outboxevent",
        "pipelinestage",
        "leadimport",
        "monthlyleadusage",
        "leadnote",
        "scoringrule",
        "assignmentrule",
    ],
)
def test_admin_list_pages_render(admin_client, organization, model):
    lead = LeadFactory(organization=organization)
    InboundSubmissionFactory(organization=organization, lead=lead)
    LeadImportFactory(organization=organization)
    response = admin_client.get(f"/admin/leads/{model}/")
    assert response.status_code == 200
    if model == "lead":
        assert admin_client.get(f"/admin/leads/lead/{lead.pk}/change/").status_code == 200


def test_admin_replays_failed_submissions(admin_client, organization):
    submission = InboundSubmissionFactory(organization=organization, raw_body='{"email": "replayed@example.com"}')
    response = admin_client.post(
        "/admin/leads/inboundsubmission/", {"action": "replay", "_selected_action": [submission.pk]}
    )
    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.ACCEPTED
    assert Lead.objects.unscoped().get(pk=submission.lead_id).email == "replayed@example.com"


def test_beat_retries_stuck_submissions_but_not_fresh_ones(organization):
    stuck = InboundSubmissionFactory(
        organization=organization, status="received", raw_body='{"email": "stuck@example.com"}'
    )
    InboundSubmission.objects.unscoped().filter(pk=stuck.pk).update(received_at=timezone.now() - timedelta(minutes=10))
    fresh = InboundSubmissionFactory(
        organization=organization, status="received", raw_body='{"email": "fresh@example.com"}'
    )
    assert tasks.retry_stuck_submissions() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert (stuck.status, fresh.status) == ("accepted", "received")


def test_beat_sweeps_the_outbox(organization):
    lead = LeadFactory(organization=organization)
    event = OutboxEvent.objects.unscoped().create(
        organization=organization,
        topic="lead.created",
        payload={"lead_id": lead.pk},
        created_at=timezone.now() - timedelta(minutes=5),
    )
    assert tasks.sweep_outbox() == 1
    event.refresh_from_db()
    assert event.handled_at is not None
    # The handlers ran: the lead counts against this month's quota.
    assert MonthlyLeadUsage.objects.unscoped().get(organization=organization).lead_count == 1
