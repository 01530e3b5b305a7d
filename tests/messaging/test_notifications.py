"""Notifications: in-app rows with a live event to the member, email/SMS/WhatsApp as each member prefers, the
wiring (lead assigned, message received, low wallet, payment failed, integration error, lead delivered), SLA
escalations once per lead and its report, the daily summary."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from freezegun import freeze_time

from accounts.constants import Role
from leadflow.tenancy.context import organization_scope
from leads.services.leads import lead_assign
from messaging.models import Message, MessageTemplate, Notification, SlaEscalation
from messaging.services.notifications import notify, preferences_set
from messaging.services.sla import sla_escalate_breaches, sla_report
from tests.conftest import member_of
from tests.factories import LeadFactory

from .conftest import TWILIO_SID, inbound_sms, twilio_post

pytestmark = pytest.mark.django_db


def test_defaults_and_preferences_per_event_and_channel(organization, twilio, django_capture_on_commit_callbacks):
    agent = member_of(organization, Role.AGENT)
    with django_capture_on_commit_callbacks(execute=True):
        sent = notify(organization=organization, users=[agent], event="lead_assigned", title="New lead for you: Asha")
    assert (sent["in_app"], sent["email"], sent["sms"], sent["whatsapp"]) == (1, 1, 0, 0)
    assert mail.outbox[-1].to == [agent.email]
    preferences_set(
        organization=organization,
        user=agent,
        choices={("lead_assigned", "email"): False, ("lead_assigned", "sms"): True, ("lead_assigned", "in_app"): False},
        phone="98123 45678",
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sent = notify(organization=organization, users=[agent], event="lead_assigned", title="Another lead: Ravi")
    assert (sent["in_app"], sent["email"], sent["sms"]) == (0, 0, 1)
    assert mail.outbox == []
    [sms] = twilio.calls("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    assert (sms.form()["To"], sms.form()["Body"]) == ("+919812345678", "Another lead: Ravi")
    assert Message.objects.unscoped().get(purpose="notification").channel == "sms"
    assert Notification.objects.unscoped().filter(user=agent, read_at__isnull=True).count() == 1


def test_a_dedupe_key_notifies_once(organization):
    owner = member_of(organization, Role.OWNER)
    for _ in range(3):
        notify(organization=organization, users=[owner], event="sla_breached", title="Late", dedupe_key="sla:1")
    assert Notification.objects.unscoped().filter(user=owner).count() == 1


def test_whatsapp_notices_use_the_notification_template(organization, twilio, django_capture_on_commit_callbacks):
    owner = member_of(organization, Role.OWNER)
    MessageTemplate.objects.unscoped().create(
        organization=organization,
        name="leadflow_notification",
        channel="whatsapp",
        body="LeadFlow: {{1}}",
        variables=["organization"],
        provider_template_id="HXnotification0000000000000000001",
    )
    preferences_set(
        organization=organization, user=owner, choices={("payment_failed", "whatsapp"): True}, phone="+919812345678"
    )
    from billing.notifications import Notice, notify_owners

    with django_capture_on_commit_callbacks(execute=True):
        result = notify_owners(
            organization=organization,
            notice=Notice(
                "Your LeadFlow payment is overdue", "payment_due", {"subscription": None, "grace_ends_at": None}
            ),
        )
    assert result == {"email": 1, "whatsapp": 1}
    form = twilio.calls("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")[0].form()
    assert (form["To"], form["ContentSid"]) == ("whatsapp:+919812345678", "HXnotification0000000000000000001")
    assert form["ContentVariables"] == '{"1": "Your LeadFlow payment is overdue"}'
    assert Notification.objects.unscoped().get(user=owner).event == "payment_failed"  # and the bell


def test_assigning_a_lead_notifies_its_new_owner(organization, django_capture_on_commit_callbacks):
    agent = member_of(organization, Role.AGENT)
    lead = LeadFactory(organization=organization)
    with django_capture_on_commit_callbacks(execute=True), organization_scope(organization):
        lead_assign(lead=lead, owner=agent, actor=None)
    notification = Notification.objects.unscoped().get(user=agent)
    assert (notification.event, notification.url) == ("lead_assigned", f"/leads/{lead.pk}/")


def test_an_inbound_message_notifies_the_conversations_owner(
    organization, twilio, channels, django_capture_on_commit_callbacks
):
    agent = member_of(organization, Role.AGENT)
    LeadFactory(organization=organization, phone="+919812345678", owner=agent)
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(Client(), "/api/webhooks/twilio/messages/", inbound_sms(Body="Is it available?"))
    notification = Notification.objects.unscoped().get(user=agent)
    assert notification.event == "message_received"
    assert notification.body == "Is it available?"


def test_low_wallet_goes_to_admins_as_they_prefer(organization, django_capture_on_commit_callbacks):
    from campaigns.emails import low_balance_email_send
    from campaigns.models import Wallet
    from tests.factories import BuyerFactory

    admin = member_of(organization, Role.ADMIN)
    quiet_admin = member_of(organization, Role.ADMIN)
    preferences_set(organization=organization, user=quiet_admin, choices={("low_wallet", "email"): False})
    buyer = BuyerFactory(organization=organization, email="", low_balance_threshold=Decimal("20"))
    Wallet.objects.unscoped().filter(buyer=buyer).update(low_balance_alerted=True)
    if not Wallet.objects.unscoped().filter(buyer=buyer).exists():
        Wallet.objects.unscoped().create(organization=organization, buyer=buyer, low_balance_alerted=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert low_balance_email_send(buyer_id=buyer.pk) == 1
    assert mail.outbox[-1].to == [admin.email]
    assert set(Notification.objects.unscoped().filter(event="low_wallet").values_list("user_id", flat=True)) == {
        admin.pk,
        quiet_admin.pk,
    }


def test_leads_not_contacted_in_time_escalate_once_to_the_owner_and_a_manager(organization, channels):
    agent = member_of(organization, Role.AGENT)
    manager = member_of(organization, Role.MANAGER)
    channels.first_contact_target_minutes = 5
    channels.save()
    now = timezone.now()
    late = LeadFactory(organization=organization, owner=agent, received_at=now - timedelta(minutes=6))
    LeadFactory(organization=organization, owner=agent, received_at=now - timedelta(minutes=2))  # still in time
    LeadFactory(organization=organization, received_at=now - timedelta(minutes=9), first_contacted_at=now)
    assert sla_escalate_breaches(now=now) == 1
    assert (
        sla_escalate_breaches(now=now + timedelta(minutes=5)) == 1
    )  # the second lead is late now, the first not again
    escalation = SlaEscalation.objects.unscoped().get(lead=late)
    assert set(escalation.notified_user_ids) == {agent.pk, manager.pk}
    assert Notification.objects.unscoped().filter(event="sla_breached", user=manager).count() == 2


def test_the_sla_report_counts_the_share_met_by_agent_and_source(organization):
    agent = member_of(organization, Role.AGENT)
    now = timezone.now()
    received = now - timedelta(hours=1)
    LeadFactory(
        organization=organization,
        owner=agent,
        source="facebook",
        received_at=received,
        first_contacted_at=received + timedelta(minutes=3),
    )
    LeadFactory(
        organization=organization,
        owner=agent,
        source="facebook",
        received_at=received,
        first_contacted_at=received + timedelta(minutes=30),
    )
    LeadFactory(organization=organization, source="api", received_at=received)
    report = sla_report(organization=organization, now=now)
    assert (report.total.leads, report.total.met, report.total.share_met) == (3, 1, 33.3)
    by_agent = {b.label: (b.leads, b.share_met) for b in report.by_agent}
    assert by_agent == {agent.display_name: (2, 50.0), "Unassigned": (1, 0.0)}
    assert {b.label: b.median_minutes for b in report.by_source}["Facebook Lead Ads"] == 16.5
    assert [b.label for b in report.by_campaign] == ["No campaign"]


def test_the_daily_summary_is_emailed_once_at_the_digest_hour(
    organization, settings, django_capture_on_commit_callbacks
):
    from messaging.services.digest import daily_summaries_send

    owner = member_of(organization, Role.OWNER)
    settings.NOTIFICATION_DIGEST_HOUR = 8
    # 08:05 in Asia/Kolkata
    with freeze_time("2026-12-02 02:35:00"):
        LeadFactory(organization=organization, received_at=timezone.now() - timedelta(hours=10))
        with django_capture_on_commit_callbacks(execute=True):
            assert daily_summaries_send() == 1
            assert daily_summaries_send() == 0
    [email] = [m for m in mail.outbox if owner.email in m.to]
    assert "1 new leads yesterday" in email.subject
    with freeze_time("2026-12-02 04:35:00"):
        assert daily_summaries_send() == 0  # 10:05 there: not the hour


def test_a_notice_not_wanted_in_the_app_is_only_remembered_for_its_dedupe_key(client, organization):
    agent = member_of(organization, Role.AGENT)
    preferences_set(organization=organization, user=agent, choices={("sla_breached", "in_app"): False})
    notify(organization=organization, users=[agent], event="sla_breached", title="Late lead", dedupe_key="sla:9")
    notify(organization=organization, users=[agent], event="sla_breached", title="Late lead", dedupe_key="sla:9")
    assert Notification.objects.unscoped().filter(user=agent).count() == 1
    client.force_login(agent)
    assert "Late lead" not in client.get("/notifications/").content.decode()
    assert client.get("/notifications/bell/").content == b""
