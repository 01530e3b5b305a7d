"""Sending through the one service, at the providers' HTTP boundary: what Twilio and Meta receive, metering, first
contact, opt-outs honored on every channel, WhatsApp's 24-hour window, quiet hours, retries."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import Client
from freezegun import freeze_time

from leads.models import LeadActivity
from messaging.constants import MessageStatus
from messaging.models import Conversation, Message, OptOut, UsageRecord
from messaging.services.sending import MessageRefused, message_send, messages_send_due
from tests.factories import LeadFactory, MessageTemplateFactory

from .conftest import META_PHONE_ID, SITE, SMS_NUMBER, TWILIO_SID, inbound_sms, meta_message, meta_post, twilio_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(organization):
    return LeadFactory(
        organization=organization,
        first_name="Asha",
        full_name="Asha Rao",
        phone="+919812345678",
        email="asha@example.com",
    )


def _twilio_sends(stand_in):
    return stand_in.calls("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")


def test_an_sms_reaches_twilio_with_our_number_and_status_callback_and_is_metered(
    organization, lead, twilio, channels, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(organization=organization, channel="sms", lead=lead, body="Hi Asha, when can we call?")
    [request] = _twilio_sends(twilio)
    form = request.form()
    assert (form["To"], form["From"], form["Body"]) == ("+919812345678", SMS_NUMBER, "Hi Asha, when can we call?")
    assert form["StatusCallback"] == f"{SITE}/api/webhooks/twilio/status/"
    message.refresh_from_db()
    assert message.provider == "twilio" and message.provider_message_id.startswith("SM")
    assert (message.status, message.submitted_at is not None) == (MessageStatus.QUEUED, True)  # Twilio said queued
    record = UsageRecord.objects.unscoped().get(source_key=f"message:{message.pk}")
    assert (record.channel, record.provider, record.provider_message_id) == (
        "sms",
        "twilio",
        message.provider_message_id,
    )
    lead.refresh_from_db()
    assert lead.first_contacted_at is not None
    assert Conversation.objects.unscoped().get().last_outbound_at is not None


def test_whatsapp_free_form_only_inside_the_24_hour_window(
    organization, lead, meta, channels, django_capture_on_commit_callbacks, settings
):
    channels.whatsapp_provider = "meta"
    channels.save()
    settings.WHATSAPP_ACCESS_TOKEN = "EAAG-platform-token"
    client = Client()
    with freeze_time("2026-12-01 10:00:00"):
        with pytest.raises(MessageRefused) as refused:
            message_send(organization=organization, channel="whatsapp", lead=lead, body="Hello")
        assert refused.value.code == "outside_window"
        with django_capture_on_commit_callbacks(execute=True):
            meta_post(client, meta_message(wamid="wamid.IN", text="Hi, details please"))
    conversation = Conversation.objects.unscoped().get(channel="whatsapp")
    with freeze_time("2026-12-02 09:59:00"), django_capture_on_commit_callbacks(execute=True):
        message_send(
            organization=organization, channel="whatsapp", conversation=conversation, body="Sure! Sending now."
        )
    [request] = meta.calls("POST", f"/v21.0/{META_PHONE_ID}/messages")
    assert request.headers["Authorization"] == "Bearer EAAG-platform-token"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919812345678",
        "type": "text",
        "text": {"preview_url": False, "body": "Sure! Sending now."},
    }
    with freeze_time("2026-12-02 10:00:01"), pytest.raises(MessageRefused):
        message_send(organization=organization, channel="whatsapp", conversation=conversation, body="One more thing")
    # Outside the window an approved template still goes, with its numbered variables filled from the lead.
    template = MessageTemplateFactory(
        organization=organization,
        name="follow_up",
        channel="whatsapp",
        body="Hi {{1}}, still looking in {{2}}?",
        variables=["first_name", "city"],
    )
    lead.city = "Pune"
    lead.save()
    conversation.refresh_from_db()
    conversation.lead.refresh_from_db()
    with freeze_time("2026-12-03 10:00:00"), django_capture_on_commit_callbacks(execute=True):
        message = message_send(
            organization=organization, channel="whatsapp", conversation=conversation, template=template
        )
    assert message.body == "Hi Asha, still looking in Pune?"
    sent = meta.calls("POST", f"/v21.0/{META_PHONE_ID}/messages")[-1].json()
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": "follow_up",
        "language": {"code": "en"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "Pune"}]}
        ],
    }
    message.refresh_from_db()
    assert message.provider_message_id.startswith("wamid.")


def test_whatsapp_templates_through_twilio_use_the_content_sid(
    organization, lead, twilio, channels, django_capture_on_commit_callbacks
):
    template = MessageTemplateFactory(
        organization=organization,
        name="welcome_wa",
        channel="whatsapp",
        body="Hi {{1}}!",
        variables=["first_name"],
        provider_template_id="HXb5b62575e6e4ff6129ad7c8efe1f983e",
    )
    with django_capture_on_commit_callbacks(execute=True):
        message_send(organization=organization, channel="whatsapp", lead=lead, template=template)
    form = _twilio_sends(twilio)[0].form()
    assert (form["To"], form["From"]) == ("whatsapp:+919812345678", "whatsapp:+14155238886")
    assert (form["ContentSid"], form["ContentVariables"]) == ("HXb5b62575e6e4ff6129ad7c8efe1f983e", '{"1": "Asha"}')
    assert "Body" not in form


def test_stop_by_sms_is_honored_on_every_channel_and_start_lifts_it(
    organization, lead, twilio, channels, django_capture_on_commit_callbacks
):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        queued = message_send(
            organization=organization, channel="email", lead=lead, body="Our brochure", subject="Brochure"
        )
        # …queued, not yet sent (its task has not run) when the lead texts STOP:
    Message.objects.unscoped().filter(pk=queued.pk).update(
        status="queued", submitted_at=None, provider="", provider_message_id=""
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(client, "/api/webhooks/twilio/messages/", inbound_sms(Body="Stop."))
    opt_out = OptOut.objects.unscoped().get()
    assert (opt_out.address, opt_out.lead_id, opt_out.method, opt_out.keyword) == (
        "+919812345678",
        lead.pk,
        "keyword",
        "STOP",
    )
    assert LeadActivity.objects.unscoped().filter(lead=lead, kind="opted_out").exists()
    for channel in ("sms", "whatsapp", "email"):
        with pytest.raises(MessageRefused) as refused:
            message_send(organization=organization, channel=channel, lead=lead, body="Anything")
        assert refused.value.code == "opted_out"
    # The message queued before the opt-out is checked again when its task runs: failed, never sent.
    from messaging.services.sending import message_deliver

    assert message_deliver(message_id=queued.pk) == "failed"
    assert mail.outbox == []
    sends = len(_twilio_sends(twilio))
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(client, "/api/webhooks/twilio/messages/", inbound_sms(Body="START", MessageSid="SM2", SmsSid="SM2"))
    with django_capture_on_commit_callbacks(execute=True):
        message_send(organization=organization, channel="sms", lead=lead, body="Welcome back")
    assert len(_twilio_sends(twilio)) == sends + 1
    assert LeadActivity.objects.unscoped().filter(lead=lead, kind="opted_in").exists()


def test_emails_carry_an_unsubscribe_link_that_opts_out(
    organization, lead, channels, django_capture_on_commit_callbacks
):
    channels.email_reply_domain = "reply.acme.example"
    channels.save()
    with django_capture_on_commit_callbacks(execute=True):
        message_send(organization=organization, channel="email", lead=lead, body="Hello Asha", subject="Your enquiry")
    [email] = mail.outbox
    assert email.extra_headers["Reply-To"] == "inbox@reply.acme.example"  # replies reach the inbound webhook
    link = email.extra_headers["List-Unsubscribe"].strip("<>")
    assert link in email.body
    path = link.split("localhost:8000", 1)[-1] if "localhost:8000" in link else "/" + link.split("/", 3)[-1]
    response = Client().post(path)
    assert response.status_code == 200
    assert OptOut.objects.unscoped().get().method == "link"
    with pytest.raises(MessageRefused):
        message_send(organization=organization, channel="sms", lead=lead, body="Hi")
    assert Client().get(path.replace("/m/unsubscribe/", "/m/unsubscribe/x")).status_code == 404


def test_quiet_hours_defer_automated_sends_and_the_sweep_sends_them_after(
    organization, lead, twilio, channels, django_capture_on_commit_callbacks
):
    channels.quiet_hours_enabled, channels.quiet_hours_start, channels.quiet_hours_end = True, time(21, 0), time(8, 0)
    channels.save()
    india = ZoneInfo("Asia/Kolkata")
    with freeze_time(datetime(2026, 12, 1, 23, 30, tzinfo=india)), django_capture_on_commit_callbacks(execute=True):
        message = message_send(organization=organization, channel="sms", lead=lead, body="Auto hello", automated=True)
        manual = message_send(organization=organization, channel="sms", lead=lead, body="A person replying")
    assert message.send_after == datetime(2026, 12, 2, 8, 0, tzinfo=india)
    assert [r.form()["Body"] for r in _twilio_sends(twilio)] == ["A person replying"]
    with freeze_time(datetime(2026, 12, 2, 7, 59, tzinfo=india)), django_capture_on_commit_callbacks(execute=True):
        assert messages_send_due() == 0
    with freeze_time(datetime(2026, 12, 2, 8, 0, 30, tzinfo=india)), django_capture_on_commit_callbacks(execute=True):
        assert messages_send_due() == 1
    assert [r.form()["Body"] for r in _twilio_sends(twilio)] == ["A person replying", "Auto hello"]
    assert manual.send_after is None


def test_twilio_failures_are_retried_or_failed(
    organization, lead, twilio, channels, django_capture_on_commit_callbacks
):
    twilio.route(
        "POST",
        rf"/2010-04-01/Accounts/{TWILIO_SID}/Messages\.json",
        lambda r, m: (500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
    )
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(organization=organization, channel="sms", lead=lead, body="Hi")
    message.refresh_from_db()
    assert (message.status, message.submitted_at, message.attempts) == ("queued", None, 1)
    assert message.send_after > message.created_at + timedelta(seconds=25)
    twilio.route(
        "POST",
        rf"/2010-04-01/Accounts/{TWILIO_SID}/Messages\.json",
        lambda r, m: (400, {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}),
    )
    from messaging.services.sending import message_deliver

    Message.objects.unscoped().filter(pk=message.pk).update(send_after=None)
    assert message_deliver(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert (message.error_code, message.failed_at is not None) == ("21211", True)
    assert not UsageRecord.objects.unscoped().exists()


def test_a_message_is_sent_once_however_often_its_task_runs(
    organization, lead, twilio, channels, django_capture_on_commit_callbacks
):
    from messaging.services.sending import message_deliver

    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(organization=organization, channel="sms", lead=lead, body="Once")
    assert message_deliver(message_id=message.pk) is None
    assert len(_twilio_sends(twilio)) == 1
