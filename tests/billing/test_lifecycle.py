"""The lifecycle under frozen time: a trial ends unpaid → past due (reminders by email, the WhatsApp channel
logs) → suspended after the grace period, pausing the campaigns (not those paused by hand) → a payment restores
the subscription and resumes exactly what billing paused. Beat runs the same functions."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from freezegun import freeze_time

from accounts.models import AuditEvent
from billing import tasks
from billing.models import Subscription
from campaigns.models import Campaign
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

START = "2026-03-01 09:00:00+00:00"


@pytest.fixture
def trial(plans, django_capture_on_commit_callbacks):
    from accounts.services import organization_create
    from tests.factories import UserFactory

    with freeze_time(START):
        owner = UserFactory(email="owner@lifecycle.example")
        organization = organization_create(owner=owner, name="Lifecycle Realty", plan=plans["starter"])
        running = CampaignFactory(organization=organization, status="active")
        by_hand = CampaignFactory(organization=organization, status="paused", pause_reason="manual")
    return organization, running, by_hand


def _subscription(organization):
    return Subscription.objects.unscoped().get(organization=organization)


def _run_beat(capture):
    with capture(execute=True):
        return {
            "expired": tasks.expire_trials(),
            "reminded": tasks.send_billing_reminders(),
            "suspended": tasks.suspend_after_grace(),
        }


def test_trial_reminders_expiry_grace_suspension_and_payment(client, trial, django_capture_on_commit_callbacks, caplog):
    organization, running, by_hand = trial
    capture = django_capture_on_commit_callbacks
    start = timezone.datetime.fromisoformat(START)
    trial_end = start + timedelta(days=settings.TRIAL_DAYS)
    mail.outbox.clear()

    with freeze_time(start + timedelta(days=5)):
        assert _run_beat(capture) == {"expired": 0, "reminded": 0, "suspended": 0}
        assert _subscription(organization).trial_days_left == 9

    with freeze_time(trial_end - timedelta(days=3)), caplog.at_level(logging.INFO, logger="billing.notifications"):
        assert _run_beat(capture)["reminded"] == 1
        assert _run_beat(capture)["reminded"] == 0  # once per mark
    assert [m.subject for m in mail.outbox] == ["Your LeadFlow trial ends in 3 days"]
    assert "whatsapp channel: billing notice" in caplog.text  # the owner has no phone: nothing sent by WhatsApp
    with freeze_time(trial_end - timedelta(hours=20)):
        assert _run_beat(capture)["reminded"] == 1
    assert mail.outbox[-1].subject == "Your LeadFlow trial ends in 1 day"

    with freeze_time(trial_end + timedelta(minutes=15)):
        assert _run_beat(capture)["expired"] == 1
        subscription = _subscription(organization)
        assert subscription.status == "past_due" and subscription.past_due_since == trial_end
    assert mail.outbox[-1].subject == "Your LeadFlow subscription is past due"
    assert Campaign.objects.unscoped().get(pk=running.pk).status == "active"  # grace: still distributing

    with freeze_time(trial_end + timedelta(days=settings.BILLING_REMINDER_EVERY_DAYS, minutes=1)):
        assert _run_beat(capture) == {"expired": 0, "reminded": 1, "suspended": 0}
    assert mail.outbox[-1].subject == "Your LeadFlow payment is overdue"

    with freeze_time(trial_end + timedelta(days=settings.BILLING_GRACE_DAYS) - timedelta(minutes=1)):
        assert _run_beat(capture)["suspended"] == 0
    with freeze_time(trial_end + timedelta(days=settings.BILLING_GRACE_DAYS, minutes=1)):
        assert _run_beat(capture)["suspended"] == 1
        assert _run_beat(capture)["suspended"] == 0
    subscription = _subscription(organization)
    assert subscription.status == "suspended"
    running.refresh_from_db()
    by_hand.refresh_from_db()
    assert (running.status, running.pause_reason) == ("paused", "billing")
    assert (by_hand.status, by_hand.pause_reason) == ("paused", "manual")
    assert mail.outbox[-1].subject == "Your LeadFlow subscription is suspended"
    # Data is kept and pages still open so the owner can pay.
    organization.refresh_from_db()
    assert organization.is_active

    # The owner pays from the billing page; the offline provider's "Pay" confirms through the same event path
    # as a provider's webhook.
    from accounts.models import User

    with freeze_time(trial_end + timedelta(days=10)):
        client.force_login(User.objects.get(email="owner@lifecycle.example"))
        to_checkout = client.post("/billing/subscribe/", {"plan": "starter", "interval": "monthly"})
        assert to_checkout.status_code == 302 and to_checkout["Location"].startswith("/billing/offline/checkout/")
        with capture(execute=True):
            paid = client.post(to_checkout["Location"])
        assert paid.status_code == 200 and b"Thank you" in paid.content
    subscription = _subscription(organization)
    assert subscription.status == "active" and subscription.suspended_at is None
    running.refresh_from_db()
    by_hand.refresh_from_db()
    assert (running.status, running.pause_reason) == ("active", "")
    assert (by_hand.status, by_hand.pause_reason) == ("paused", "manual")

    changes = [
        e.changes["status"]
        for e in AuditEvent.objects.unscoped()
        .filter(organization=organization, action="subscription.status_changed")
        .order_by("created_at", "id")
    ]
    assert changes == [["trialing", "past_due"], ["past_due", "suspended"], ["suspended", "active"]]
    suspended = AuditEvent.objects.unscoped().get(organization=organization, changes__status=["past_due", "suspended"])
    assert suspended.changes["campaigns_paused"] == 1
    # Nothing more is due for an active subscription.
    with freeze_time(trial_end + timedelta(days=40)):
        assert _run_beat(capture) == {"expired": 0, "reminded": 0, "suspended": 0}


def test_beat_schedules_are_declared_in_code():
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "billing.tasks.expire_trials",
        "billing.tasks.send_billing_reminders",
        "billing.tasks.suspend_after_grace",
        "billing.tasks.invoice_metered_usage",
        "billing.tasks.sweep_billing_events",
    } <= schedule
