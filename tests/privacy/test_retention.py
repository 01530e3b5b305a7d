"""Retention: each organization's policy deletes old raw payloads and webhook logs and anonymizes old closed leads;
--dry-run counts without changing anything. Time is frozen so "old" is exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from freezegun import freeze_time

from accounts.constants import Role
from accounts.models import AuditEvent
from integrations.models import WebhookDelivery, WebhookMessage
from leads.constants import StageKind
from leads.intake.pipeline import lead_intake
from leads.models import InboundSubmission, Lead, LeadImport, PipelineStage
from privacy.services import retention_apply, retention_policy_update
from privacy.tasks import apply_retention
from tests.conftest import member_of
from tests.factories import (
    InboundSubmissionFactory,
    LeadImportFactory,
    OrganizationFactory,
    WebhookDeliveryFactory,
    WebhookMessageFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _closed_lead(organization, email: str, kind: str):
    outcome = lead_intake(
        organization=organization, source="api", payload={"email": email, "full_name": "Old Customer"}
    )
    stage = PipelineStage.objects.unscoped().get(organization=organization, kind=kind)
    Lead.objects.unscoped().filter(pk=outcome.lead.pk).update(stage=stage)
    return outcome.lead


@pytest.fixture
def history(organization):
    """Data from 100 days ago and from yesterday, under a 30/30/90-day policy."""
    with freeze_time(NOW - timedelta(days=100)):
        old_submission = InboundSubmissionFactory(organization=organization, status="rejected")
        old_import = LeadImportFactory(organization=organization, status="completed")
        old_message = WebhookMessageFactory(organization=organization)
        WebhookDeliveryFactory(organization=organization, message=old_message, status="succeeded")
        retrying = WebhookMessageFactory(organization=organization)
        WebhookDeliveryFactory(organization=organization, message=retrying, status="pending")
        old_won = _closed_lead(organization, "won.long.ago@example.com", StageKind.WON)
        old_open = lead_intake(
            organization=organization, source="api", payload={"email": "still.open@example.com"}
        ).lead
    with freeze_time(NOW - timedelta(days=1)):
        new_submission = InboundSubmissionFactory(organization=organization, status="rejected")
        new_message = WebhookMessageFactory(organization=organization)
        new_lost = _closed_lead(organization, "lost.yesterday@example.com", StageKind.LOST)
    retention_policy_update(
        organization=organization, raw_submissions_days=30, webhook_logs_days=30, closed_leads_days=90
    )
    return {
        "old_submission": old_submission,
        "old_import": old_import,
        "old_message": old_message,
        "retrying": retrying,
        "old_won": old_won,
        "old_open": old_open,
        "new_submission": new_submission,
        "new_message": new_message,
        "new_lost": new_lost,
    }


def test_a_dry_run_counts_and_changes_nothing(organization, history):
    submissions = InboundSubmission.objects.unscoped().filter(organization=organization).count()
    with freeze_time(NOW):
        counts = retention_apply(organization=organization, dry_run=True)
    # Old: the rejected payload, plus the payloads that made the two old leads (every lead's raw payload is kept
    # as long as the policy says, whatever became of it).
    assert counts == {"raw_submissions": 3, "csv_imports": 1, "webhook_messages": 1, "closed_leads": 1}
    assert InboundSubmission.objects.unscoped().filter(organization=organization).count() == submissions
    assert Lead.objects.unscoped().get(pk=history["old_won"].pk).email == "won.long.ago@example.com"
    assert not AuditEvent.objects.unscoped().filter(action="privacy.retention_applied").exists()

    out = StringIO()
    with freeze_time(NOW):
        call_command("apply_retention", "--dry-run", "--org", organization.slug, stdout=out)
    assert (
        f"{organization.slug}: would change 3 raw submissions, 1 csv imports, 1 webhook messages, 1 closed leads"
        in out.getvalue()
    )


def test_the_policy_deletes_and_anonymizes_what_is_old(organization, history):
    with freeze_time(NOW):
        counts = retention_apply(organization=organization)
    assert counts == {"raw_submissions": 3, "csv_imports": 1, "webhook_messages": 1, "closed_leads": 1}

    submissions = InboundSubmission.objects.unscoped().filter(organization=organization)
    assert not submissions.filter(pk=history["old_submission"].pk).exists()
    assert submissions.filter(pk=history["new_submission"].pk).exists()
    assert not LeadImport.objects.unscoped().filter(pk=history["old_import"].pk).exists()
    messages = WebhookMessage.objects.unscoped().filter(organization=organization)
    assert not messages.filter(pk=history["old_message"].pk).exists()
    assert not WebhookDelivery.objects.unscoped().filter(message_id=history["old_message"].pk).exists()
    assert messages.filter(pk__in=[history["retrying"].pk, history["new_message"].pk]).count() == 2

    won = Lead.objects.unscoped().get(pk=history["old_won"].pk)
    assert (won.email, won.full_name, won.stage.kind) == ("", "", StageKind.WON)
    assert "privacy-erased" in won.tags
    assert Lead.objects.unscoped().get(pk=history["old_open"].pk).email == "still.open@example.com"
    assert Lead.objects.unscoped().get(pk=history["new_lost"].pk).email == "lost.yesterday@example.com"

    event = AuditEvent.objects.unscoped().get(organization=organization, action="privacy.retention_applied")
    assert event.changes["closed_leads"] == 1 and event.changes["policy"]["closed_leads_days"] == 90

    # Applying it again finds nothing more: anonymized leads are not counted twice.
    with freeze_time(NOW):
        assert sum(retention_apply(organization=organization).values()) == 0


def test_the_nightly_task_applies_every_policy_and_skips_organizations_without_one(organization, history):
    without_policy = OrganizationFactory()
    with freeze_time(NOW - timedelta(days=400)):
        kept = InboundSubmissionFactory(organization=without_policy)
    with freeze_time(NOW):
        changed = apply_retention.delay().get()
    assert changed == {
        organization.slug: {"raw_submissions": 3, "csv_imports": 1, "webhook_messages": 1, "closed_leads": 1}
    }
    assert InboundSubmission.objects.unscoped().filter(pk=kept.pk).exists()


def test_the_policy_is_set_on_the_privacy_page_and_audited(client, organization):
    owner = member_of(organization, Role.OWNER)
    client.force_login(owner)
    invalid = client.post(
        "/settings/privacy/retention/", {"raw_submissions_days": "0", "webhook_logs_days": "", "closed_leads_days": ""}
    )
    assert invalid.status_code == 400
    assert "greater than or equal to 1" in invalid.content.decode()
    saved = client.post(
        "/settings/privacy/retention/",
        {"raw_submissions_days": "60", "webhook_logs_days": "14", "closed_leads_days": ""},
    )
    assert saved.status_code == 302
    event = AuditEvent.objects.unscoped().get(organization=organization, action="privacy.retention_policy_updated")
    assert event.actor_user == owner
    assert event.changes == {"raw_submissions_days": [None, 60], "webhook_logs_days": [None, 14]}
    page = client.get("/settings/privacy/").content.decode()
    assert 'value="60"' in page and 'value="14"' in page
