"""The outside world on loopback, shared by the benchmarks: Meta (the Graph API and signed leadgen notifications),
Twilio (the Messages API and signed inbound webhooks) and the customers' and buyers' webhook receivers.

Each stand-in is a ``ThreadingHTTPServer`` on a free port in a daemon thread of the benchmark's own process, and
answers the way the real service documents it, so LeadFlow's providers run unchanged against it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Hashable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the client's delayed ACK
        # add 40 ms to every answer on a kept-alive connection, and the stand-ins would measure themselves.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))


class StandIn:
    """A loopback HTTP server for ``handler`` in a daemon thread; ``shutdown()`` stops it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def shutdown(self) -> None:
        self.server.shutdown()


# Meta: Facebook Lead Ads ---------------------------------------------------------------------------------------------

FACEBOOK_APP_SECRET = "bench-app-secret"  # noqa: S105 - a throwaway secret for loopback
FACEBOOK_PAGE_ID = "104200000000001"
FACEBOOK_PAGE_TOKEN = "EAAB-bench-page-token"  # noqa: S105
FACEBOOK_FORM_ID = "550000000000001"
FACEBOOK_AD_ID = "238000000000001"
FACEBOOK_CAMPAIGN_ID = "238000000000009"
GRAPH_VERSION = "21.0"
FACEBOOK_WEBHOOK_PATH = "/api/webhooks/facebook/"
_LEADGEN_BASE = 9_007_199_254_740_993  # above 2^53, as Meta's ids are: they must travel as strings


def leadgen_id(n: int) -> str:
    return str(_LEADGEN_BASE + n)


def graph_lead(n: int) -> dict:
    return {
        "id": leadgen_id(n),
        "created_time": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()),
        "ad_id": FACEBOOK_AD_ID,
        "form_id": FACEBOOK_FORM_ID,
        "campaign_id": FACEBOOK_CAMPAIGN_ID,
        "platform": "fb",
        "is_organic": False,
        "field_data": [
            {"name": "full_name", "values": [f"Speed Lead {n}"]},
            {"name": "email", "values": [f"speed.lead.{n}@example.com"]},
            {"name": "phone_number", "values": [f"+9198{n:08d}"]},
            {"name": "city", "values": ["Pune"]},
            {"name": "what_is_your_budget?", "values": ["5-10 lakh"]},
        ],
    }


def leadgen_notification(n: int) -> tuple[bytes, dict[str, str]]:
    """Meta's ``leadgen`` notification for lead ``n``, and its headers signed with the app secret."""
    now = int(time.time())
    change = {
        "field": "leadgen",
        "value": {
            "leadgen_id": leadgen_id(n),
            "page_id": FACEBOOK_PAGE_ID,
            "form_id": FACEBOOK_FORM_ID,
            "ad_id": FACEBOOK_AD_ID,
            "adgroup_id": FACEBOOK_AD_ID,
            "created_time": now,
        },
    }
    body = json.dumps({"object": "page", "entry": [{"id": FACEBOOK_PAGE_ID, "time": now, "changes": [change]}]})
    signature = "sha256=" + hmac.new(FACEBOOK_APP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    return body.encode(), {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}


class GraphStandIn(StandIn):
    """``GET /v{version}/{leadgen_id}?access_token=…`` answered with the lead as the Graph API documents it; the
    backfill's ``{page_id}/leadgen_forms`` and ``{form_id}/leads`` with the one form and no lead it missed."""

    def __init__(self):
        class Graph(QuietHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                if segments[0] != f"v{GRAPH_VERSION}" or f"access_token={FACEBOOK_PAGE_TOKEN}" not in parts.query:
                    error = {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
                    return self.answer(400, json.dumps(error).encode())
                if segments[1:] == [FACEBOOK_PAGE_ID, "leadgen_forms"]:
                    form = {"id": FACEBOOK_FORM_ID, "name": "Bench form", "status": "ACTIVE"}
                    return self.answer(200, json.dumps({"data": [form]}).encode())
                if segments[1:] == [FACEBOOK_FORM_ID, "leads"]:
                    return self.answer(200, json.dumps({"data": []}).encode())
                if len(segments) != 2 or not segments[1].isdigit():
                    error = {"error": {"message": "Unknown path.", "type": "GraphMethodException", "code": 100}}
                    return self.answer(400, json.dumps(error).encode())
                return self.answer(200, json.dumps(graph_lead(int(segments[1]) - _LEADGEN_BASE)).encode())

        super().__init__(Graph)

    def environment(self) -> dict[str, str]:
        """What LeadFlow's processes need to fetch from this stand-in and verify the notifications."""
        return {
            "FACEBOOK_GRAPH_URL": self.base_url,
            "FACEBOOK_GRAPH_VERSION": GRAPH_VERSION,
            "FACEBOOK_APP_SECRET": FACEBOOK_APP_SECRET,
        }


def facebook_page_connect(organization) -> None:
    """The organization's Facebook connection for the page the notifications are about (through the service)."""
    from integrations.services.connections import connection_create
    from leadflow.tenancy.context import organization_scope

    with organization_scope(organization):
        connection_create(
            organization=organization,
            provider="facebook",
            name="Bench page",
            credentials={"page_access_token": FACEBOOK_PAGE_TOKEN},
            external_account_id=FACEBOOK_PAGE_ID,
            settings={"page_id": FACEBOOK_PAGE_ID, "page_name": "Bench Realty"},
        )


# Twilio --------------------------------------------------------------------------------------------------------------

TWILIO_SID = "ACbench00000000000000000000000001"
TWILIO_TOKEN = "bench-twilio-auth-token"  # noqa: S105 - a throwaway token for loopback
TWILIO_SMS_NUMBER = "+15005550006"
TWILIO_WEBHOOK_PATH = "/api/webhooks/twilio/messages/"


class TwilioStandIn(StandIn):
    """Twilio's Messages API: notes when each create arrives (per To number), answers a queued message."""

    def __init__(self):
        self.arrived: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        sids = itertools.count(1)
        stand_in = self

        class Messages(QuietHandler):
            def do_POST(self):
                at = time.perf_counter()
                form = {k: v[0] for k, v in parse_qs(self.body().decode()).items()}
                to = form.get("To", "")
                with stand_in.lock:
                    stand_in.arrived.setdefault(to, []).append(at)
                    sid = f"SMbench{next(sids):027x}"
                answer = {
                    "sid": sid,
                    "account_sid": TWILIO_SID,
                    "to": to,
                    "status": "queued",
                    "price": None,
                    "price_unit": "USD",
                }
                self.answer(201, json.dumps(answer).encode())

        super().__init__(Messages)

    def environment(self) -> dict[str, str]:
        return {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_API_URL": self.base_url}


def twilio_sms_number_configure(organization) -> None:
    """The organization receives SMS at the stand-in's number; WhatsApp off, so anything it sends goes by SMS."""
    from messaging.services.channels import messaging_settings_update

    messaging_settings_update(organization=organization, twilio_sms_from=TWILIO_SMS_NUMBER, whatsapp_enabled=False)


def twilio_inbound(n: int, *, site_url: str, sender: str) -> tuple[str, bytes, dict[str, str]]:
    """Inbound SMS number ``n`` from ``sender``, signed with ``X-Twilio-Signature`` over the public URL; returns the
    token its body ends with (what the websocket event's preview shows), the form body and the headers."""
    from twilio.request_validator import RequestValidator

    token = f"bench-{n}"
    params = {
        "MessageSid": f"SMin{n:030d}",
        "SmsSid": f"SMin{n:030d}",
        "AccountSid": TWILIO_SID,
        "From": sender,
        "To": TWILIO_SMS_NUMBER,
        "Body": f"Hello, is it available? {token}",
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(site_url + TWILIO_WEBHOOK_PATH, params)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return token, urlencode(params).encode(), headers


# Webhook receivers ---------------------------------------------------------------------------------------------------


class WebhookReceiver(StandIn):
    """Customers' or buyers' endpoints: each path has its endpoint's secret, every Standard Webhooks signature is
    verified with it, and each verified message is noted under ``key(payload)`` (``None``: not counted) with the
    time it arrived (``perf_counter``, and wall-clock for comparing with timestamps the database wrote)."""

    def __init__(self, key: Callable[[dict], Hashable | None]):
        self.secrets: dict[str, str] = {}  # path → the endpoint's signing secret
        self.arrived: dict[Hashable, list[float]] = {}
        self.arrived_wall: dict[Hashable, float] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Endpoint(QuietHandler):
            def do_POST(self):
                from standardwebhooks.webhooks import Webhook, WebhookVerificationError

                body = self.body()
                at, wall = time.perf_counter(), time.time()
                secret = receiver.secrets.get(urlsplit(self.path).path)
                try:
                    if secret is None:
                        raise WebhookVerificationError("no endpoint at this path")
                    payload = Webhook(secret).verify(body, {k.lower(): v for k, v in self.headers.items()})
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    return self.answer(400)
                name = key(payload)
                if name is not None:
                    with receiver.lock:
                        receiver.arrived.setdefault(name, []).append(at)
                        receiver.arrived_wall.setdefault(name, wall)
                return self.answer(204)

        super().__init__(Endpoint)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def counts(self) -> dict[Hashable, int]:
        with self.lock:
            return {name: len(times) for name, times in self.arrived.items()}


def sale_id_of(payload: dict) -> int | None:
    """A buyer's ``lead.sold`` webhook, counted by sale."""
    if payload.get("type") != "lead.sold":
        return None
    return payload["data"]["sale"]["id"]
