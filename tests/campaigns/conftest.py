from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from campaigns.services.wallets import wallet_credit
from tests.factories import BuyerFactory, BuyerSubscriptionFactory, CampaignFactory


@pytest.fixture
def market(organization):
    """Build a campaign with subscribed buyers: ``market(logic, buyers=[{...subscription fields, "funds": …}])``."""

    def build(logic="round_robin", buyers=({},), price="10.00", **campaign_fields):
        campaign = CampaignFactory(
            organization=organization, distribution_logic=logic, price_per_lead=Decimal(price), **campaign_fields
        )
        subscriptions = []
        for spec in buyers:
            spec = dict(spec)
            funds = spec.pop("funds", "1000.00")
            buyer_fields = {name: spec.pop(name) for name in ("credit_limit", "timezone", "status") if name in spec}
            buyer = BuyerFactory(organization=organization, **buyer_fields)
            if Decimal(funds) > 0:
                wallet_credit(buyer=buyer, amount=funds)
            subscriptions.append(
                BuyerSubscriptionFactory(organization=organization, buyer=buyer, campaign=campaign, **spec)
            )
        return campaign, subscriptions

    return build


class StandIn:
    """A loopback HTTP server playing a provider or a buyer's receiver: it keeps every request and answers from
    ``answers`` (status, JSON body) in turn, then with ``default``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, object]] = []
        self.default: tuple[int, object] = (200, {})
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stand_in.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                status, payload = stand_in.answers.pop(0) if stand_in.answers else stand_in.default
                content = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def form(self, index: int = -1) -> dict[str, str]:
        return dict(parse_qsl(self.requests[index]["body"].decode()))

    def json(self, index: int = -1):
        return json.loads(self.requests[index]["body"])


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(autouse=True)
def _fresh_campaign_caches():
    """Suppliers behind keys and the live-figures throttle are remembered per process: every test starts clean."""
    from campaigns.intake import suppliers_forget
    from campaigns.services.live import live_throttle_reset

    suppliers_forget()
    live_throttle_reset()
    yield
