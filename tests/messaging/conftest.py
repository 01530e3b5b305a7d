"""Provider stand-ins for messaging tests: real HTTP on 127.0.0.1 answering as Twilio's Messages API, Meta's Graph
API and OpenAI's chat completions document their answers, and recording what LeadFlow sent. Plus signing helpers
that sign exactly as the providers do (Twilio's SDK validator's own algorithm, Meta's HMAC)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from tests.billing.standins import StandIn, serve

TWILIO_SID, TWILIO_TOKEN = "ACmessaging00000000000000000000001", "twilio-messaging-token"
SMS_NUMBER, WHATSAPP_NUMBER = "+15005550006", "+14155238886"
META_SECRET, META_VERIFY = "meta-app-secret", "meta-verify-token"
META_PHONE_ID, META_WABA = "106540352242922", "102290129340398"
SITE = "https://leadflow.example.com"


@pytest.fixture
def twilio(settings):
    """Twilio's Messages API: each create answers a new SM… sid with status queued, as Twilio does."""
    stand_in = StandIn()
    sids = itertools.count(1)

    def create(recorded, match):
        form = recorded.form()
        sid = f"SMout{next(sids):029x}"
        return 201, {
            "sid": sid,
            "account_sid": TWILIO_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json",
        }

    stand_in.route("POST", rf"/2010-04-01/Accounts/{TWILIO_SID}/Messages\.json", create)
    server = serve(stand_in)
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TWILIO_SID, TWILIO_TOKEN
    settings.TWILIO_API_URL = stand_in.url
    settings.SITE_URL = SITE
    yield stand_in
    server.shutdown()


@pytest.fixture
def meta(settings):
    """Meta's Graph API: message sends answer a wamid, template lists answer what ``templates`` holds."""
    stand_in = StandIn()
    ids = itertools.count(1)
    stand_in.templates = []

    def send(recorded, match):
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": recorded.json().get("to"), "wa_id": recorded.json().get("to")}],
            "messages": [{"id": f"wamid.HBgLMTIzNDU2Nzg5MBUCABEYEj{next(ids):08d}", "message_status": "accepted"}],
        }

    stand_in.route("POST", rf"/v21\.0/{META_PHONE_ID}/messages", send)
    stand_in.route(
        "GET",
        rf"/v21\.0/{META_WABA}/message_templates",
        lambda recorded, match: {"data": stand_in.templates, "paging": {"cursors": {"before": "a", "after": "b"}}},
    )
    server = serve(stand_in)
    settings.WHATSAPP_GRAPH_URL = stand_in.url
    settings.WHATSAPP_GRAPH_VERSION = "21.0"
    settings.WHATSAPP_APP_SECRET, settings.WHATSAPP_VERIFY_TOKEN = META_SECRET, META_VERIFY
    yield stand_in
    server.shutdown()


def twilio_post(client, path: str, params: dict, *, token: str = TWILIO_TOKEN, signed_url: str | None = None):
    """POST a form the way Twilio does, signed with the SDK's own algorithm over the public URL."""
    url = signed_url or f"{SITE}{path}"
    signature = RequestValidator(token).compute_signature(url, params)
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def inbound_sms(**overrides) -> dict:
    params = {
        "ToCountry": "US",
        "SmsMessageSid": "SM00000000000000000000000000000001",
        "NumMedia": "0",
        "SmsSid": "SM00000000000000000000000000000001",
        "SmsStatus": "received",
        "Body": "Hi, is the 2BHK still available?",
        "To": SMS_NUMBER,
        "NumSegments": "1",
        "MessageSid": "SM00000000000000000000000000000001",
        "AccountSid": TWILIO_SID,
        "From": "+919812345678",
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    return params


def meta_post(client, body: dict, *, secret: str = META_SECRET):
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        "/api/webhooks/whatsapp/", data=raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )


def meta_message(
    *,
    wamid: str,
    sender: str = "919812345678",
    text: str = "Hello",
    name: str = "Asha Rao",
    timestamp: int | None = None,
) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": META_WABA,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": META_PHONE_ID},
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": wamid,
                                    "timestamp": str(timestamp),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def meta_status(*, wamid: str, status: str, timestamp: int = 1764583300, errors: list | None = None) -> dict:
    item = {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": "919812345678"}
    if errors:
        item["errors"] = errors
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": META_WABA,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": META_PHONE_ID},
                            "statuses": [item],
                        },
                    }
                ],
            }
        ],
    }


@pytest.fixture
def channels(organization):
    """The organization's Twilio numbers and Meta phone number id."""
    from messaging.services.channels import messaging_settings_for

    row = messaging_settings_for(organization.pk)
    row.twilio_sms_from, row.twilio_whatsapp_from, row.meta_phone_number_id = SMS_NUMBER, WHATSAPP_NUMBER, META_PHONE_ID
    row.save()
    return row
