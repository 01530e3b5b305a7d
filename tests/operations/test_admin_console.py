"""The operator console: organization and subscription actions (trial extension, suspension), replays, the
Operations section, beat schedules and campaign monitoring."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.models import AuditEvent
from billing.models import SubscriptionStatus
from campaigns.models import Campaign, LeadDistribution
from integrations.models import WebhookDelivery
from leads.models import InboundSubmission
from tests.factories import (
    CampaignFactory,
    InboundSubmissionFactory,
    LeadDistributionFactory,
    OrganizationFactory,
    SubscriptionFactory,
    WebhookDeliveryFactory,
)

pytestmark = pytest.mark.django_db

ORGANIZATIONS = "/admin/accounts/organization/"


def _action(client, url, action, objects, **extra):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], **extra})


def test_extend_trial_asks_for_days_then_extends_and_audits(operator_client, operator):
    subscription = SubscriptionFactory(trial_ends_at=timezone.now() + timedelta(days=2))
    organization = subscription.organization
    before = subscription.trial_ends_at

    form = _action(operator_client, ORGANIZATIONS, "extend_trial", [organization])
    assert form.status_code == 200
    assert b'data-testid="extend-trial"' in form.content
    subscription.refresh_from_db()
    assert subscription.trial_ends_at == before  # nothing happens until the days are given

    invalid = _action(operator_client, ORGANIZATIONS, "extend_trial", [organization], apply="1", days="0")
    assert invalid.status_code == 200
    assert b"greater than or equal to 1" in invalid.content

    done = _action(operator_client, ORGANIZATIONS, "extend_trial", [organization], apply="1", days="10")
    assert done.status_code == 302
    subscription.refresh_from_db()
    assert subscription.trial_ends_at == before + timedelta(days=10)
    assert subscription.status == SubscriptionStatus.TRIALING
    event = AuditEvent.objects.unscoped().get(organization=organization, action="subscription.trial_extended")
    assert event.actor_user == operator
    assert event.changes["days"] == 10
    assert event.changes["trial_ends_at"][1] == subscription.trial_ends_at.isoformat()


def test_extending_a_lapsed_trial_reopens_it_and_resumes_what_billing_paused(operator_client):
    ended = timezone.now() - timedelta(days=20)
    subscription = SubscriptionFactory(
        status=SubscriptionStatus.SUSPENDED, trial_ends_at=ended, past_due_since=ended, suspended_at=ended
    )
    organization = subscription.organization
    billing_paused = CampaignFactory(organization=organization, status="paused", pause_reason="billing")
    paused_by_hand = CampaignFactory(organization=organization, status="paused", pause_reason="manual")

    response = _action(
        operator_client, "/admin/billing/subscription/", "extend_trial", [subscription], apply="1", days="7"
    )
    assert response.status_code == 302

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.TRIALING
    assert subscription.past_due_since is None and subscription.suspended_at is None
    assert timedelta(days=6, hours=23) < subscription.trial_ends_at - timezone.now() <= timedelta(days=7)
    assert Campaign.objects.unscoped().get(pk=billing_paused.pk).status == "active"
    assert Campaign.objects.unscoped().get(pk=paused_by_hand.pk).status == "paused"
    actions = set(AuditEvent.objects.unscoped().filter(organization=organization).values_list("action", flat=True))
    assert {"subscription.trial_extended", "subscription.status_changed"} <= actions


def test_a_paid_subscription_has_no_trial_to_extend(operator_client):
    subscription = SubscriptionFactory(
        status=SubscriptionStatus.ACTIVE, provider="razorpay", provider_subscription_id="sub_1"
    )
    before = subscription.trial_ends_at
    response = _action(operator_client, ORGANIZATIONS, "extend_trial", [subscription.organization], apply="1", days="5")
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.trial_ends_at == before
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("paid plan" in message for message in messages)
    assert not AuditEvent.objects.unscoped().filter(action="subscription.trial_extended").exists()


def test_suspend_and_reactivate_are_audited(operator_client, operator):
    organization = OrganizationFactory()
    assert _action(operator_client, ORGANIZATIONS, "suspend", [organization]).status_code == 302
    organization.refresh_from_db()
    assert organization.is_active is False
    assert _action(operator_client, ORGANIZATIONS, "reactivate", [organization]).status_code == 302
    organization.refresh_from_db()
    assert organization.is_active is True
    events = AuditEvent.objects.unscoped().filter(organization=organization).order_by("created_at", "id")
    assert [(e.action, e.actor_user_id) for e in events] == [
        ("organization.suspended", operator.pk),
        ("organization.reactivated", operator.pk),
    ]


def test_organization_list_shows_subscription_status(operator_client):
    subscription = SubscriptionFactory(status=SubscriptionStatus.PAST_DUE)
    response = operator_client.get(ORGANIZATIONS)
    assert response.status_code == 200
    assert subscription.organization.name in response.content.decode()
    assert "Past due" in response.content.decode()


def test_replaying_submissions_processes_them_and_audits(operator_client, operator):
    organization = OrganizationFactory()
    good = InboundSubmissionFactory(organization=organization, raw_body='{"email": "replayed@example.com"}')
    bad = InboundSubmissionFactory(organization=organization, raw_body='{"email": "not an email"}')
    response = _action(operator_client, "/admin/leads/inboundsubmission/", "replay", [good, bad])
    assert response.status_code == 302
    assert InboundSubmission.objects.unscoped().get(pk=good.pk).status == "accepted"
    assert InboundSubmission.objects.unscoped().get(pk=bad.pk).status == "rejected"
    event = AuditEvent.objects.unscoped().get(organization=organization, action="submissions.replayed")
    assert event.actor_user == operator
    assert event.changes["submissions"] == {str(good.pk): "accepted", str(bad.pk): "rejected"}


def test_replaying_a_failed_delivery_queues_it_again(operator_client, operator):
    delivery = WebhookDeliveryFactory(status="failed", next_attempt_at=None)
    response = _action(operator_client, "/admin/integrations/webhookdelivery/", "replay", [delivery])
    assert response.status_code == 302
    delivery = WebhookDelivery.objects.unscoped().get(pk=delivery.pk)
    assert delivery.status == "pending"
    assert AuditEvent.objects.unscoped().get(action="webhook_delivery.replayed").actor_user == operator


def test_the_index_links_the_operations_pages_and_beat_schedules_are_listed(operator_client):
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="leads-sweep-outbox", task="leads.tasks.sweep_outbox", interval=every_minute)
    index = operator_client.get("/admin/").content.decode()
    assert "/admin/operations/health/" in index
    assert "/admin/operations/campaigns/" in index
    assert "/admin/django_celery_beat/periodictask/" in index
    schedules = operator_client.get("/admin/django_celery_beat/periodictask/")
    assert schedules.status_code == 200
    assert "leads-sweep-outbox" in schedules.content.decode()


def test_operations_pages_are_for_staff_only(client, db):
    for url in ("/admin/operations/health/", "/admin/operations/campaigns/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_campaign_monitoring_counts_todays_routings_per_campaign(operator_client):
    inr, usd = OrganizationFactory(currency="INR"), OrganizationFactory(currency="USD")
    busy = CampaignFactory(organization=inr, name="Solar Pune")
    quiet = CampaignFactory(organization=usd, name="Medicare Ohio")
    now = timezone.now()
    for revenue in ("40.00", "25.50"):
        LeadDistributionFactory(organization=inr, campaign=busy, status="sold", revenue=Decimal(revenue))
    LeadDistributionFactory(organization=inr, campaign=busy, status="unsold")
    # A second routing of a lead counts as sold, not as another lead.
    again = LeadDistributionFactory(organization=inr, campaign=busy, status="unsold")
    LeadDistributionFactory(
        organization=inr, campaign=busy, lead=again.lead, round=2, status="sold", revenue=Decimal("10")
    )
    # Yesterday's sale is outside today.
    old = LeadDistributionFactory(organization=inr, campaign=busy, status="sold", revenue=Decimal("99"))
    LeadDistribution.objects.unscoped().filter(pk=old.pk).update(created_at=now - timedelta(days=1, hours=1))
    LeadDistributionFactory(organization=usd, campaign=quiet, status="sold", revenue=Decimal("12.00"))

    response = operator_client.get("/admin/operations/campaigns/")
    assert response.status_code == 200
    rows = {row["campaign"].pk: row for row in response.context["rows"]}
    assert (rows[busy.pk]["leads"], rows[busy.pk]["sold"], rows[busy.pk]["unsold"]) == (4, 3, 2)
    assert rows[busy.pk]["revenue"] == Decimal("75.50")
    assert (rows[quiet.pk]["leads"], rows[quiet.pk]["revenue"]) == (1, Decimal("12.00"))
    assert response.context["totals"]["INR"]["revenue"] == Decimal("75.50")
    assert response.context["totals"]["USD"]["revenue"] == Decimal("12.00")
    html = response.content.decode()
    assert "Solar Pune" in html and "75.50 INR" in html

    week = operator_client.get("/admin/operations/campaigns/?window=7d")
    week_rows = {row["campaign"].pk: row for row in week.context["rows"]}
    assert week_rows[busy.pk]["revenue"] == Decimal("174.50")
