"""Inbound provider webhooks: signatures (Twilio's SDK validator, Meta's HMAC and handshake, anymail's basic auth),
raw storage first, leads made through the intake, idempotency on provider ids, and order-safe status callbacks."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from leads.constants import LeadSource
from leads.models import InboundSubmission, Lead
from messaging.constants import MessageStatus
from messaging.models import Conversation, Message, OptOut, ProviderEvent
from tests.factories import LeadFactory

from .conftest import (
    META_VERIFY,
    SITE,
    TWILIO_TOKEN,
    WHATSAPP_NUMBER,
    inbound_sms,
    meta_message,
    meta_post,
    meta_status,
    twilio_post,
)

pytestmark = pytest.mark.django_db

MESSAGES, STATUS = "/api/webhooks/twilio/messages/", "/api/webhooks/twilio/status/"


@pytest.fixture
def client():
    return Client()


def test_a_signed_sms_from_an_unknown_number_becomes_a_lead_and_a_conversation(
    client, twilio, channels, organization, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio_post(client, MESSAGES, inbound_sms())
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml") and b"<Response/>" in response.content
    event = ProviderEvent.objects.unscoped().get()
    assert (event.provider, event.kind, event.signature_valid, event.status) == ("twilio", "message", True, "processed")
    assert "Body=Hi%2C+is+the+2BHK" in event.raw_body  # kept exactly as it arrived
    assert event.organization_id == organization.pk
    lead = Lead.objects.unscoped().get(organization=organization)
    assert (lead.source, lead.phone) == (LeadSource.MESSAGE, "+919812345678")
    assert InboundSubmission.objects.unscoped().get(lead=lead).source == "message"
    conversation = Conversation.objects.unscoped().get()
    assert (conversation.channel, conversation.address, conversation.lead_id) == ("sms", "+919812345678", lead.pk)
    assert (conversation.unread_count, conversation.needs_reply) == (1, True)
    message = Message.objects.unscoped().get()
    assert (message.direction, message.status, message.body) == ("in", "received", "Hi, is the 2BHK still available?")


def test_a_message_from_a_known_lead_joins_its_conversation_and_a_redelivery_changes_nothing(
    client, twilio, channels, organization, django_capture_on_commit_callbacks
):
    lead = LeadFactory(organization=organization, phone="+919812345678")
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(client, MESSAGES, inbound_sms())
        twilio_post(client, MESSAGES, inbound_sms())  # Twilio retried
    assert Lead.objects.unscoped().filter(organization=organization).count() == 1
    assert Message.objects.unscoped().get().lead_id == lead.pk
    assert Conversation.objects.unscoped().get().unread_count == 1
    assert ProviderEvent.objects.unscoped().count() == 2  # both stored raw


def test_whatsapp_through_twilio_keeps_the_profile_name_and_media(
    client, twilio, channels, organization, django_capture_on_commit_callbacks
):
    params = inbound_sms(
        From="whatsapp:+919812345678",
        To=f"whatsapp:{WHATSAPP_NUMBER}",
        ProfileName="Asha Rao",
        WaId="919812345678",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1",
        MediaContentType0="image/jpeg",
        MessageSid="SM00000000000000000000000000000002",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert twilio_post(client, MESSAGES, params).status_code == 200
    conversation = Conversation.objects.unscoped().get()
    assert (conversation.channel, conversation.contact_name) == ("whatsapp", "Asha Rao")
    assert Message.objects.unscoped().get().media == [{"url": params["MediaUrl0"], "content_type": "image/jpeg"}]
    assert conversation.last_inbound_at is not None  # opens WhatsApp's 24-hour window


def test_a_bad_twilio_signature_is_stored_refused_and_never_processed(
    client, twilio, channels, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = twilio_post(client, MESSAGES, inbound_sms(), token="not-the-auth-token")
    assert response.status_code == 403
    event = ProviderEvent.objects.unscoped().get()
    assert (event.signature_valid, event.status) == (False, "rejected")
    assert not Message.objects.unscoped().exists()
    # A signature over different parameters does not pass either.
    params = inbound_sms()
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{SITE}{MESSAGES}", params)
    params["Body"] = "tampered"
    from urllib.parse import urlencode

    response = client.post(
        MESSAGES,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 403


def test_the_signature_is_checked_against_the_public_url_behind_a_proxy(client, twilio, channels, settings):
    # Twilio signed https://leadflow.example.com/…, the request reached us as http://testserver/…
    assert twilio_post(client, MESSAGES, inbound_sms(), signed_url=f"{SITE}{MESSAGES}").status_code == 200
    settings.SITE_URL = "https://elsewhere.example.com"
    assert twilio_post(client, MESSAGES, inbound_sms(), signed_url=f"{SITE}{MESSAGES}").status_code == 403


def _sent_message(organization, *, provider="twilio", pid="SMabc", status=MessageStatus.QUEUED):
    lead = LeadFactory(organization=organization)
    conversation = Conversation.objects.unscoped().create(
        organization=organization, channel="sms", address=lead.phone, lead=lead
    )
    return Message.objects.unscoped().create(
        organization=organization,
        conversation=conversation,
        lead=lead,
        channel="sms",
        direction="out",
        to_address=lead.phone,
        body="Hello",
        provider=provider,
        provider_message_id=pid,
        status=status,
    )


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["sent", "delivered", "read"], "read"),
        (["read", "delivered", "sent"], "read"),  # out of order: a read message never goes back
        (["delivered", "undelivered"], "delivered"),  # a late failure never undoes a delivery
        (["sent", "failed", "delivered"], "delivered"),  # …but a delivery receipt proves it arrived after all
        (["queued", "sending", "sent", "sent"], "sent"),  # repeats change nothing
        (["sent", "failed"], "failed"),
    ],
)
def test_status_callbacks_only_move_up_the_ladder(
    client, twilio, organization, django_capture_on_commit_callbacks, sequence, final
):
    message = _sent_message(organization)
    with django_capture_on_commit_callbacks(execute=True):
        for status in sequence:
            params = {"MessageSid": "SMabc", "MessageStatus": status, "AccountSid": "AC", "To": message.to_address}
            if status in ("failed", "undelivered"):
                params["ErrorCode"] = "30003"
            assert twilio_post(client, STATUS, params).status_code == 200
    message.refresh_from_db()
    assert message.status == final
    if final == "read":
        assert message.read_at and message.delivered_at and message.sent_at
    if final == "failed":
        assert message.error_code == "30003"


def test_a_status_that_arrives_before_its_message_is_recorded_is_applied_later(
    client, twilio, organization, django_capture_on_commit_callbacks
):
    from messaging.tasks import process_provider_event

    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(client, STATUS, {"MessageSid": "SMlate", "MessageStatus": "delivered"})
    event = ProviderEvent.objects.unscoped().get()
    assert event.status == "failed"
    message = _sent_message(organization, pid="SMlate")
    process_provider_event(event.pk)
    message.refresh_from_db()
    assert message.status == "delivered"
    event.refresh_from_db()
    assert event.status == "processed"


def test_twilio_error_21610_records_an_opt_out(client, twilio, organization, django_capture_on_commit_callbacks):
    message = _sent_message(organization)
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(client, STATUS, {"MessageSid": "SMabc", "MessageStatus": "failed", "ErrorCode": "21610"})
    opt_out = OptOut.objects.unscoped().get()
    assert (opt_out.address, opt_out.method, opt_out.lead_id) == (message.to_address, "provider", message.lead_id)


# Meta's WhatsApp Cloud API -------------------------------------------------------------------------------------------


def test_meta_handshake_echoes_the_challenge_only_for_our_verify_token(client, meta):
    ok = client.get(
        "/api/webhooks/whatsapp/",
        {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "1158201444"},
    )
    assert (ok.status_code, ok.content) == (200, b"1158201444")
    refused = client.get(
        "/api/webhooks/whatsapp/", {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "x"}
    )
    assert refused.status_code == 403


def test_meta_messages_and_statuses(client, meta, channels, organization, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = meta_post(client, meta_message(wamid="wamid.IN1", text="Price please?"))
    assert response.status_code == 200
    message = Message.objects.unscoped().get()
    assert (message.provider, message.channel, message.from_address) == ("meta", "whatsapp", "+919812345678")
    assert message.conversation.contact_name == "Asha Rao"
    assert Lead.objects.unscoped().get().source == "message"

    outbound = _sent_message(organization, provider="meta", pid="wamid.OUT1")
    with django_capture_on_commit_callbacks(execute=True):
        meta_post(client, meta_status(wamid="wamid.OUT1", status="read", timestamp=1764583400))
        meta_post(client, meta_status(wamid="wamid.OUT1", status="delivered", timestamp=1764583300))
    outbound.refresh_from_db()
    assert outbound.status == "read"
    assert int(outbound.read_at.timestamp()) == 1764583400


def test_meta_refuses_a_bad_signature(client, meta, channels, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = meta_post(client, meta_message(wamid="wamid.X"), secret="wrong")
    assert response.status_code == 403
    assert ProviderEvent.objects.unscoped().get().status == "rejected"
    assert not Message.objects.unscoped().exists()


def test_meta_failed_status_keeps_the_error(client, meta, channels, organization, django_capture_on_commit_callbacks):
    outbound = _sent_message(organization, provider="meta", pid="wamid.F")
    with django_capture_on_commit_callbacks(execute=True):
        meta_post(
            client,
            meta_status(wamid="wamid.F", status="failed", errors=[{"code": 131047, "title": "Re-engagement message"}]),
        )
    outbound.refresh_from_db()
    assert (outbound.status, outbound.error_code, outbound.error_message) == (
        "failed",
        "131047",
        "Re-engagement message",
    )


# Email through anymail --------------------------------------------------------------------------------------------


@pytest.fixture
def anymail_auth(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret-words"}
    return "Basic " + base64.b64encode(b"hook:secret-words").decode()


def test_anymail_tracking_moves_an_email_on(client, organization, anymail_auth, django_capture_on_commit_callbacks):
    message = _sent_message(organization, provider="anymail", pid="883953f4-6105-42a2-a16a-77a8eac79483")
    body = {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": "john@example.com",
        "Tag": "welcome-email",
        "DeliveredAt": "2026-12-01T16:33:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/webhooks/email/postmark/tracking/",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=anymail_auth,
        )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    # Without the webhook secret anymail refuses it.
    assert (
        client.post(
            "/api/webhooks/email/postmark/tracking/", data=json.dumps(body), content_type="application/json"
        ).status_code
        == 400
    )


def test_anymail_inbound_email_becomes_a_message(
    client, organization, channels, anymail_auth, django_capture_on_commit_callbacks
):
    channels.email_reply_domain = "reply.acme.example"
    channels.save()
    body = {
        "FromName": "Asha Rao",
        "From": "asha@example.com",
        "FromFull": {"Email": "asha@example.com", "Name": "Asha Rao", "MailboxHash": ""},
        "To": "sales@reply.acme.example",
        "ToFull": [{"Email": "sales@reply.acme.example", "Name": "", "MailboxHash": ""}],
        "Subject": "Question about the listing",
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "TextBody": "Is parking included?",
        "HtmlBody": "<p>Is parking included?</p>",
        "Headers": [{"Name": "Message-ID", "Value": "<CAF4s@mail.example.com>"}],
        "Attachments": [],
        "Date": "Thu, 5 Apr 2026 16:59:01 +0200",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/webhooks/email/postmark/inbound/",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=anymail_auth,
        )
    assert response.status_code == 200
    message = Message.objects.unscoped().get()
    assert (message.channel, message.from_address, message.subject, message.body.strip()) == (
        "email",
        "asha@example.com",
        "Question about the listing",
        "Is parking included?",
    )
    assert Lead.objects.unscoped().get().email == "asha@example.com"


def test_the_admin_replays_a_stored_event(client, twilio, channels, organization, django_capture_on_commit_callbacks):
    from django.contrib.auth import get_user_model

    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(client, MESSAGES, inbound_sms())
    event = ProviderEvent.objects.unscoped().get()
    Message.objects.unscoped().all().delete()
    ProviderEvent.objects.unscoped().filter(pk=event.pk).update(status="failed")
    staff = get_user_model().objects.create_superuser(email="ops@leadflow.local", password="x-long-password")
    client.force_login(staff)
    assert client.get("/admin/messaging/providerevent/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/messaging/providerevent/", {"action": "process_again", "_selected_action": [event.pk]}
        )
    assert response.status_code == 302
    assert Message.objects.unscoped().get().body == "Hi, is the 2BHK still available?"
