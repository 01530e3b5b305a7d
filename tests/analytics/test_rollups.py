"""Keeping the rollups: an incremental refresh always equals a rebuild, new leads cost the intake nothing, older
changes are queued as stale days, and a time zone change rebuilds."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.constants import Role
from analytics import selectors
from analytics.cubes import CUBES, LEAD_GRAINS
from analytics.models import CampaignSpendDay, LeadDayRollup, RollupStaleDay, RollupState
from analytics.services import rollups_rebuild, rollups_refresh, rollups_refresh_all
from leadflow.tenancy.context import organization_scope
from leads.intake.pipeline import lead_intake
from leads.services.leads import lead_assign, lead_change_stage, lead_delete, lead_mark_contacted, lead_mark_won
from leads.services.stages import stage_delete, stages_ensure_default
from messaging.services.sending import message_status_apply
from tests.factories import (
    CampaignFactory,
    LeadDistributionFactory,
    LeadFactory,
    LeadReturnFactory,
    LeadSaleFactory,
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
)

pytestmark = pytest.mark.django_db


def snapshot(organization) -> dict[str, list[tuple]]:
    """Every rollup row of the organization, without ids, sorted: what a refresh and a rebuild must agree on."""
    models = [CampaignSpendDay]
    for cube in CUBES.values():
        models += [cube.day_model] + ([cube.month_model] if cube.month_model else [])
    rows = {}
    for model in models:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows[model.__name__] = sorted(
            model.objects.unscoped().filter(organization=organization).values_list(*fields), key=repr
        )
    return rows


OPERATIONS = ("create", "stage", "assign", "unassign", "contact", "won", "delete", "sell", "return", "message")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 40), st.integers(0, 10), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_incremental_refresh_equals_a_rebuild(db, steps):
    """Leads and sales on days inside and far outside the live window, changed through the services in any order
    (with refreshes in between): the rollups a refresh leaves are exactly those a rebuild computes."""
    now = timezone.now()
    organization = OrganizationFactory(timezone="America/New_York")
    stages = stages_ensure_default(organization=organization)
    agent = MembershipFactory(organization=organization, role=Role.AGENT).user
    campaign = CampaignFactory(organization=organization)
    leads = [
        LeadFactory(organization=organization, received_at=now - timedelta(days=days, hours=5), stage=stages[0])
        for days in (0, 1, 3, 9, 30)
    ]
    LeadDistributionFactory(organization=organization, lead=leads[3], campaign=campaign)
    sales = [LeadSaleFactory(organization=organization, created_at=now - timedelta(days=12))]
    messages = [
        MessageFactory(organization=organization, direction="out", status="queued", created_at=now - timedelta(days=20))
    ]
    assert rollups_refresh(organization=organization)["rebuilt"]  # the first refresh builds everything
    with organization_scope(organization):
        for operation, days, pick, flag in steps:
            live = [lead for lead in leads if lead.pk is not None]
            lead = live[pick % len(live)] if live else None
            if operation == "create":
                leads.append(
                    LeadFactory(
                        organization=organization,
                        received_at=now - timedelta(days=days, minutes=pick),
                        stage=stages[pick % len(stages)],
                        source="facebook" if flag else "api",
                    )
                )
            elif lead is None:
                continue
            elif operation == "stage":
                lead_change_stage(lead=lead, stage=stages[pick % 4], actor=None)
            elif operation in ("assign", "unassign"):
                lead_assign(lead=lead, owner=agent if operation == "assign" else None, actor=None)
            elif operation == "contact":
                lead_mark_contacted(lead=lead)
            elif operation == "won":
                lead_mark_won(lead=lead, actor=None, amount=Decimal(100 + pick))
            elif operation == "delete":
                lead_delete(lead=lead, actor=None)
                lead.pk = None
            elif operation == "sell":
                sales.append(LeadSaleFactory(organization=organization, created_at=now - timedelta(days=days)))
            elif operation == "return":
                sale = sales[pick % len(sales)]
                if not hasattr(sale, "lead_return"):
                    LeadReturnFactory(
                        organization=organization, sale=sale, status="approved", decided_at=now, refund_entry=None
                    )
            elif operation == "message":
                message = messages[pick % len(messages)]
                message.provider, message.provider_message_id = "twilio", f"SM{message.pk}"
                message.save(update_fields=["provider", "provider_message_id"])
                message_status_apply(provider="twilio", provider_message_id=message.provider_message_id, status="read")
            if flag and operation != "create":
                rollups_refresh(organization=organization)
    rollups_refresh(organization=organization)
    refreshed = snapshot(organization)
    rollups_rebuild(organization=organization)
    assert refreshed == snapshot(organization)


def test_new_leads_cost_the_intake_no_analytics_statement(organization):
    stages_ensure_default(organization=organization)
    with CaptureQueriesContext(connection) as queries, organization_scope(organization):
        lead_intake(
            organization=organization, source="api", payload={"full_name": "Asha Rao", "email": "a@example.com"}
        )
    assert not [q["sql"] for q in queries.captured_queries if "analytics_" in q["sql"]]
    assert not RollupStaleDay.objects.unscoped().exists()


def test_an_older_lead_changed_queues_its_day_and_the_refresh_takes_it(organization):
    stages = stages_ensure_default(organization=organization)
    old = LeadFactory(organization=organization, received_at=timezone.now() - timedelta(days=20), stage=stages[0])
    rollups_refresh(organization=organization)
    with CaptureQueriesContext(connection) as queries, organization_scope(organization):
        lead_change_stage(lead=old, stage=stages[4], actor=None)  # Won
    inserts = [q["sql"] for q in queries.captured_queries if "analytics_rollupstaleday" in q["sql"]]
    assert len(inserts) == 1
    day = old.received_at.astimezone(ZoneInfo(organization.timezone)).date()
    assert list(RollupStaleDay.objects.unscoped().values_list("cube", flat=True)) == ["leads"]

    rollups_refresh(organization=organization)
    assert not RollupStaleDay.objects.unscoped().exists()
    with organization_scope(organization):
        report = selectors.funnel(selectors.ReportFilters(date_from=day - timedelta(days=1), date_to=day))
    assert report.totals["won"] == 1


def test_recent_changes_need_no_marker(organization):
    stages = stages_ensure_default(organization=organization)
    lead = LeadFactory(organization=organization, received_at=timezone.now() - timedelta(hours=3), stage=stages[0])
    rollups_refresh(organization=organization)
    with organization_scope(organization):
        lead_mark_contacted(lead=lead)
    assert not RollupStaleDay.objects.unscoped().exists()
    rollups_refresh(organization=organization)
    totals = LeadDayRollup.objects.unscoped().filter(organization=organization, grain=LEAD_GRAINS[0].bits)
    assert sum(totals.values_list("contacted", flat=True)) == 1


def test_deleting_a_stage_and_changing_the_time_zone_rebuild(organization):
    stages = stages_ensure_default(organization=organization)
    LeadFactory(organization=organization, received_at=timezone.now() - timedelta(days=40), stage=stages[2])
    rollups_refresh(organization=organization)
    with organization_scope(organization):
        stage_delete(stage=stages[2], move_to=stages[1])
    assert RollupState.objects.unscoped().get(organization=organization).rebuild_requested
    assert rollups_refresh(organization=organization)["rebuilt"]
    full = LeadDayRollup.objects.unscoped().filter(organization=organization, grain=0)
    assert list(full.values_list("stage_id", flat=True)) == [stages[1].pk]

    organization.timezone = "UTC"
    organization.save(update_fields=["timezone"])
    result = rollups_refresh(organization=organization)
    assert result["rebuilt"] and RollupState.objects.unscoped().get(organization=organization).timezone == "UTC"
    assert not rollups_refresh(organization=organization)["rebuilt"]


def test_the_beat_refresh_covers_every_active_organization(organization, other_organization):
    suspended = OrganizationFactory(is_active=False)
    done = {result["organization"] for result in rollups_refresh_all()}
    assert {organization.pk, other_organization.pk} <= done and suspended.pk not in done
    from django.conf import settings as django_settings

    assert (
        django_settings.CELERY_BEAT_SCHEDULE["analytics-refresh-rollups"]["task"] == "analytics.tasks.refresh_rollups"
    )


def test_rebuild_command(organization, capsys):
    from django.core.management import call_command

    call_command("rebuild_analytics", "--organization", organization.slug)
    assert RollupState.objects.unscoped().get(organization=organization).rebuilt_at is not None
    assert "rebuilt" in capsys.readouterr().out


def test_operators_see_the_state_and_rebuild_from_the_admin(client, organization):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    rollups_refresh(organization=organization)
    state = RollupState.objects.unscoped().get(organization=organization)
    assert client.get("/admin/analytics/rollupstate/").status_code == 200
    response = client.post(
        "/admin/analytics/rollupstate/", {"action": "rebuild", "_selected_action": [state.pk]}, follow=True
    )
    assert response.status_code == 200 and "rebuilt in" in response.content.decode()
