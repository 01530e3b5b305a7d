"""Automations: every new workspace's instant welcome, conditions, steps and waits (with frozen time), stopping
on reply, opt-out, won or lost, once per trigger, and the idle triggers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from freezegun import freeze_time

from accounts.services import organization_create
from leadflow.exceptions import ServiceError
from leads.constants import StageKind
from leads.intake.pipeline import lead_intake
from leads.models import Lead, PipelineStage
from leads.services.leads import lead_change_stage
from messaging.constants import AutomationTrigger
from messaging.models import (
    AutomationExecution,
    AutomationRule,
    AutomationStep,
    AutomationStepRun,
    Message,
    MessageTemplate,
)
from messaging.services.automations import (
    automations_trigger,
    executions_resume_due,
    idle_triggers_run,
    rule_save,
    welcome_automation_install,
)
from tests.factories import LeadFactory, UserFactory

from .conftest import TWILIO_SID, inbound_sms, twilio_post

pytestmark = pytest.mark.django_db


def _sends(stand_in):
    return stand_in.calls("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")


def test_a_new_workspace_welcomes_each_new_lead_on_their_channel(django_capture_on_commit_callbacks):
    organization = organization_create(owner=UserFactory(), name="Welcome Homes", welcome_email=False)
    rule = AutomationRule.objects.unscoped().get(organization=organization, system_key="instant_welcome")
    assert list(AutomationStep.objects.unscoped().filter(rule=rule).values_list("action", flat=True)) == [
        "send_template"
    ]
    assert set(
        MessageTemplate.objects.unscoped()
        .filter(organization=organization, name="welcome")
        .values_list("channel", flat=True)
    ) == {"whatsapp", "sms", "email"}
    with django_capture_on_commit_callbacks(execute=True):
        lead_intake(
            organization=organization,
            source="api",
            payload={"first_name": "Asha", "phone": "+919812345678", "email": "asha@example.com"},
        )
    lead = Lead.objects.unscoped().get(organization=organization)
    message = Message.objects.unscoped().get(lead=lead)
    # The lead has a phone: WhatsApp first, with the approved welcome template and its variables.
    assert (message.channel, message.automated, message.template.name) == ("whatsapp", True, "welcome")
    assert message.body.startswith("Hi Asha, thanks for contacting Welcome Homes!")
    assert message.provider == "log"  # no Twilio account: the offline provider
    execution = AutomationExecution.objects.unscoped().get(lead=lead)
    assert execution.status == "completed"
    assert AutomationStepRun.objects.unscoped().get(execution=execution).message_id == message.pk
    lead.refresh_from_db()
    assert lead.first_contacted_at is not None
    # Installing again (a retried signal, the data migration) changes nothing.
    assert welcome_automation_install(organization=organization).pk == rule.pk


def test_an_email_only_lead_is_welcomed_by_email(django_capture_on_commit_callbacks):
    from django.core import mail

    organization = organization_create(owner=UserFactory(), name="Mail Only", welcome_email=False)
    with django_capture_on_commit_callbacks(execute=True):
        lead_intake(
            organization=organization, source="api", payload={"first_name": "Ravi", "email": "ravi@example.com"}
        )
    [email] = mail.outbox
    assert (email.to, email.subject) == (["ravi@example.com"], "Thanks for contacting Mail Only")
    assert email.body.startswith("Hi Ravi,")


def _rule(organization, steps, **fields):
    return rule_save(
        organization=organization,
        name=fields.pop("name", "Follow up"),
        trigger=fields.pop("trigger", AutomationTrigger.LEAD_CREATED),
        steps=steps,
        **fields,
    )


def _template(organization, name="nudge", body="Hi {{first_name}}, any questions?"):
    return MessageTemplate.objects.unscoped().create(organization=organization, name=name, channel="sms", body=body)


def test_conditions_all_and_any(organization):
    _template(organization)
    send = [{"action": "send_template", "config": {"template": "nudge", "channel": "sms"}}]
    both = _rule(
        organization,
        send,
        name="Both",
        conditions={
            "match": "all",
            "rules": [
                {"field": "source", "operator": "equals", "value": "facebook"},
                {"field": "custom.budget", "operator": "gte", "value": "50000"},
            ],
        },
    )
    either = _rule(
        organization,
        send,
        name="Either",
        conditions={
            "match": "any",
            "rules": [
                {"field": "source", "operator": "equals", "value": "facebook"},
                {"field": "custom.budget", "operator": "gte", "value": "50000"},
            ],
        },
    )
    rich_ad = LeadFactory(organization=organization, source="facebook", custom={"budget": 90000})
    cheap_ad = LeadFactory(organization=organization, source="facebook", custom={"budget": 100})
    other = LeadFactory(organization=organization, source="api", custom={})
    automations_trigger(
        organization=organization, trigger="lead_created", leads=[rich_ad, cheap_ad, other], key="created"
    )
    ran = set(AutomationExecution.objects.unscoped().values_list("rule__name", "lead_id"))
    assert ran == {("Both", rich_ad.pk), ("Either", rich_ad.pk), ("Either", cheap_ad.pk)}
    assert both and either


def test_a_sequence_waits_then_continues_and_runs_each_step_once(
    organization, twilio, django_capture_on_commit_callbacks
):
    _template(organization, "day0", "Hi {{first_name}}!")
    _template(organization, "day1", "Still interested, {{first_name}}?")
    _rule(
        organization,
        [
            {"action": "send_template", "config": {"template": "day0", "channel": "sms"}},
            {"action": "wait", "config": {"minutes": 60 * 24}},
            {"action": "send_template", "config": {"template": "day1", "channel": "sms"}},
            {"action": "tag", "config": {"add": ["nurtured"]}},
        ],
    )
    lead = LeadFactory(organization=organization, first_name="Asha", full_name="Asha Rao")
    start = timezone.now()
    with freeze_time(start), django_capture_on_commit_callbacks(execute=True):
        automations_trigger(organization=organization, trigger="lead_created", leads=[lead], key="created")
        automations_trigger(organization=organization, trigger="lead_created", leads=[lead], key="created")  # again
    execution = AutomationExecution.objects.unscoped().get()
    assert (execution.status, execution.next_step) == ("waiting", 1)
    assert execution.resume_at == start + timedelta(days=1)
    assert [r.form()["Body"] for r in _sends(twilio)] == ["Hi Asha!"]
    with freeze_time(start + timedelta(hours=23, minutes=59)):
        assert executions_resume_due() == 0
    with freeze_time(start + timedelta(days=1, seconds=1)), django_capture_on_commit_callbacks(execute=True):
        assert executions_resume_due() == 1
        assert executions_resume_due() == 0  # finished: nothing twice
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert [r.form()["Body"] for r in _sends(twilio)] == ["Hi Asha!", "Still interested, Asha?"]
    assert list(AutomationStepRun.objects.unscoped().filter(execution=execution).values_list("action", "status")) == [
        ("send_template", "done"),
        ("wait", "done"),
        ("send_template", "done"),
        ("tag", "done"),
    ]
    lead.refresh_from_db()
    assert "nurtured" in lead.tags


@pytest.mark.parametrize("how", ["reply", "won", "opt_out"])
def test_a_waiting_sequence_stops_when_the_lead_replies_is_won_or_opts_out(
    organization, channels, twilio, how, django_capture_on_commit_callbacks
):
    _template(organization)
    _rule(
        organization,
        [
            {"action": "send_template", "config": {"template": "nudge", "channel": "sms"}},
            {"action": "wait", "config": {"minutes": 120}},
            {"action": "send_template", "config": {"template": "nudge", "channel": "sms"}},
        ],
    )
    lead = LeadFactory(organization=organization, phone="+919812345678")
    start = timezone.now()
    with freeze_time(start), django_capture_on_commit_callbacks(execute=True):
        automations_trigger(organization=organization, trigger="lead_created", leads=[lead], key="created")
    with freeze_time(start + timedelta(minutes=30)), django_capture_on_commit_callbacks(execute=True):
        if how == "won":
            won = PipelineStage.objects.unscoped().get(organization=organization, kind=StageKind.WON)
            from leadflow.tenancy.context import organization_scope

            with organization_scope(organization):
                lead_change_stage(lead=Lead.objects.unscoped().get(pk=lead.pk), stage=won, actor=None)
        else:
            response = twilio_post(
                Client(), "/api/webhooks/twilio/messages/", inbound_sms(Body="STOP" if how == "opt_out" else "Call me")
            )
            assert response.status_code == 200
    with freeze_time(start + timedelta(hours=3)), django_capture_on_commit_callbacks(execute=True):
        executions_resume_due()
    execution = AutomationExecution.objects.unscoped().get(rule__name="Follow up")
    assert execution.status == "stopped"
    assert execution.stop_reason == {"reply": "lead replied", "won": "lead won", "opt_out": "opted out"}[how]
    assert len(_sends(twilio)) == 1


def test_no_reply_for_n_hours_starts_once_per_silence(organization, twilio, django_capture_on_commit_callbacks):
    from messaging.services.sending import message_send

    _template(organization)
    _rule(
        organization,
        [{"action": "send_template", "config": {"template": "nudge", "channel": "sms"}}],
        name="Chase",
        trigger=AutomationTrigger.NO_REPLY,
        trigger_config={"hours": 24},
    )
    lead = LeadFactory(organization=organization, first_name="Ravi")
    start = timezone.now()
    with freeze_time(start), django_capture_on_commit_callbacks(execute=True):
        message_send(organization=organization, channel="sms", lead=lead, body="Here is the brochure")
    with freeze_time(start + timedelta(hours=23)):
        assert idle_triggers_run() == 0
    with freeze_time(start + timedelta(hours=25)), django_capture_on_commit_callbacks(execute=True):
        assert idle_triggers_run() == 1
    with freeze_time(start + timedelta(hours=26)), django_capture_on_commit_callbacks(execute=True):
        # Our chaser is now the last message; its own 24 hours have not passed.
        assert idle_triggers_run() == 0
    assert [r.form()["Body"] for r in _sends(twilio)] == ["Here is the brochure", "Hi Ravi, any questions?"]


def test_rules_refuse_bad_steps_with_the_field_named(organization):
    with pytest.raises(ServiceError) as error:
        _rule(organization, [{"action": "wait", "config": {"minutes": 0}}])
    assert error.value.field == "steps[0].minutes"
    with pytest.raises(ServiceError) as error:
        _rule(organization, [{"action": "send_template", "config": {}}], trigger=AutomationTrigger.NO_ACTIVITY)
    assert error.value.field == "trigger_config"


def test_a_webhook_step_posts_through_the_signed_webhook_machinery(
    organization, settings, django_capture_on_commit_callbacks
):
    from integrations.models import WebhookDelivery, WebhookEndpoint

    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    _rule(organization, [{"action": "webhook", "config": {"url": "https://hooks.example.com/leadflow"}}])
    endpoint = WebhookEndpoint.objects.unscoped().get(organization=organization)
    assert endpoint.purpose == "automation"
    lead = LeadFactory(organization=organization)
    automations_trigger(organization=organization, trigger="lead_created", leads=[lead], key="created")
    delivery = WebhookDelivery.objects.unscoped().get(endpoint=endpoint)
    assert delivery.message.event_type == "automation.step"
    assert delivery.message.payload["data"]["lead"]["id"] == lead.pk


def test_with_twilio_the_whatsapp_welcome_waits_for_a_content_sid_and_sms_goes_meanwhile(
    twilio, django_capture_on_commit_callbacks
):
    from messaging.services.templates import template_update

    organization = organization_create(owner=UserFactory(), name="Live Twilio", welcome_email=False)
    whatsapp = MessageTemplate.objects.unscoped().get(organization=organization, name="welcome", channel="whatsapp")
    assert whatsapp.status == "pending"  # Twilio needs an approved Content template for this
    with django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"first_name": "Asha", "phone": "+919812345678"})
    [request] = _sends(twilio)
    assert (request.form()["To"], request.form()["Body"][:8]) == ("+919812345678", "Hi Asha,")
    template_update(template=whatsapp, provider_template_id="HXb5b62575e6e4ff6129ad7c8efe1f983e")
    whatsapp.refresh_from_db()
    assert whatsapp.status == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"first_name": "Ravi", "phone": "+919800000001"})
    form = _sends(twilio)[-1].form()
    assert (form["To"], form["ContentSid"]) == ("whatsapp:+919800000001", "HXb5b62575e6e4ff6129ad7c8efe1f983e")
    assert form["ContentVariables"] == '{"1": "Ravi", "2": "Live Twilio"}'
