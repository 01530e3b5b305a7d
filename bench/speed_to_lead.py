"""`make bench-speed-to-lead`: from a Facebook Lead Ads webhook POST to the signed outbound webhook arriving.

Served as `make bench` serves LeadFlow (gunicorn, a real Celery worker, `leadflow.settings.bench`, a fresh
`leadflow_bench` database). This process plays Meta and the customer's system, on loopback:

- a **Graph API stand-in** answers `GET /v{version}/{leadgen_id}` with the lead as the Graph API documents it
  (`id`, `created_time`, `ad_id`, `form_id`, `campaign_id`, `field_data`);
- a **receiver** subscribed to `lead.created` verifies each delivery's Standard Webhooks signature with the
  endpoint's secret and notes when it arrived;
- the **sender** POSTs one `leadgen` notification per lead, signed with the app secret (`X-Hub-Signature-256`),
  at a fixed rate (open loop: a slow server cannot slow the sender down).

Speed to lead is the time from the notification being sent to its lead's webhook arriving. Every lead must arrive
exactly once ("lost" counts those that never did; "repeated" those that came twice). Environment:
STL_RATE (leads/s, 50), STL_SECONDS (60), STL_DRAIN_SECONDS (how long to wait for stragglers, 30), and the
BENCH_* variables of `bench/run.py` (database, Redis, gunicorn workers/threads; BENCH_CELERY_CONCURRENCY defaults
to 2 here, as in the Procfile).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from . import cpu, loadgen
from .run import Config, Servers, free_port, log, machine_info, prepare

APP_SECRET = "bench-app-secret"  # noqa: S105 - a throwaway secret for loopback
PAGE_ID = "104200000000001"
PAGE_TOKEN = "EAAB-bench-page-token"  # noqa: S105
FORM_ID = "550000000000001"
AD_ID = "238000000000001"
CAMPAIGN_ID = "238000000000009"
GRAPH_VERSION = "21.0"


def leadgen_id(n: int) -> str:
    # Above 2^53, as Meta's ids are: they must travel as strings.
    return str(9_007_199_254_740_993 + n)


def graph_lead(n: int) -> dict:
    return {
        "id": leadgen_id(n),
        "created_time": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()),
        "ad_id": AD_ID,
        "form_id": FORM_ID,
        "campaign_id": CAMPAIGN_ID,
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


def notification(n: int) -> bytes:
    now = int(time.time())
    return json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "time": now,
                    "changes": [
                        {
                            "field": "leadgen",
                            "value": {
                                "leadgen_id": leadgen_id(n),
                                "page_id": PAGE_ID,
                                "form_id": FORM_ID,
                                "ad_id": AD_ID,
                                "adgroup_id": AD_ID,
                                "created_time": now,
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def app_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


class _Quiet(BaseHTTPRequestHandler):
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


def graph_stand_in() -> ThreadingHTTPServer:
    class Graph(_Quiet):
        def do_GET(self):
            parts = urlsplit(self.path)
            segments = parts.path.strip("/").split("/")
            if (
                len(segments) != 2
                or segments[0] != f"v{GRAPH_VERSION}"
                or f"access_token={PAGE_TOKEN}" not in parts.query
            ):
                error = {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
                return self.answer(400, json.dumps(error).encode())
            n = int(segments[1]) - 9_007_199_254_740_993
            return self.answer(200, json.dumps(graph_lead(n)).encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Graph)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Receiver:
    """The customer's endpoint: checks every signature, notes when each lead arrived."""

    def __init__(self):
        self.arrived: dict[str, list[float]] = {}
        self.arrived_wall: dict[str, float] = {}
        self.bad_signatures = 0
        self.secret = ""
        self.lock = threading.Lock()
        receiver = self

        class Handler(_Quiet):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.perf_counter()
                from standardwebhooks.webhooks import Webhook, WebhookVerificationError

                try:
                    payload = Webhook(receiver.secret).verify(body, {k.lower(): v for k, v in self.headers.items()})
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    return self.answer(400)
                data = payload.get("data") or {}
                lead = data.get("lead", data)
                key = str(lead.get("external_id") or "")
                if payload.get("type") == "lead.created" and key:
                    with receiver.lock:
                        receiver.arrived.setdefault(key, []).append(at)
                        receiver.arrived_wall.setdefault(key, time.time() - (time.perf_counter() - at))
                return self.answer(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/leadflow-hooks"


def configure(workspace, receiver: Receiver) -> None:
    """The measured organization gets a Facebook page connection and a webhook endpoint for lead.created."""
    from accounts.models import Organization
    from integrations.services.connections import connection_create
    from integrations.services.webhooks import webhook_endpoint_create
    from leadflow.tenancy.context import organization_scope

    organization = Organization.objects.get(pk=workspace.organization_id)
    with organization_scope(organization):
        connection_create(
            organization=organization,
            provider="facebook",
            name="Bench page",
            credentials={"page_access_token": PAGE_TOKEN},
            external_account_id=PAGE_ID,
            settings={"page_id": PAGE_ID, "page_name": "Bench Realty"},
        )
        endpoint = webhook_endpoint_create(
            organization=organization, url=receiver.url, events=["lead.created"], description="speed to lead"
        )
    receiver.secret = endpoint.secret


async def send(
    base_url: str, *, rate: float, seconds: float, sent: dict[str, float], sent_wall: dict[str, float]
) -> list[loadgen.Sample]:
    """Open loop: notification n is due at n / rate; its clock starts when it is due."""
    samples: list[loadgen.Sample] = []
    total = int(rate * seconds)
    async with loadgen.LeanClient(base_url, 64) as client:
        began = time.perf_counter() + 0.05

        async def one(n: int, due: float):
            body = notification(n)
            sent[leadgen_id(n)] = due
            sent_wall[leadgen_id(n)] = time.time() - (time.perf_counter() - due)
            try:
                response = await client.request_raw(
                    "POST",
                    "/api/webhooks/facebook/",
                    headers={"X-Hub-Signature-256": app_signature(body), "Content-Type": "application/json"},
                    body=body,
                )
                ok, status, detail = response.status_code == 200, response.status_code, response.text[:200]
            except loadgen.TransportError as error:
                ok, status, detail = False, 0, str(error)
            ms = (time.perf_counter() - due) * 1000
            samples.append(loadgen.Sample("facebook-webhook", ms, status, 0, ok, ms, "" if ok else detail))

        tasks = []
        for n in range(total):
            due = began + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, due)))
        await asyncio.gather(*tasks)
    return samples


# Where a lead's time goes, from the timestamps each step wrote (one host clock for all of them).
_STAGES_SQL = """
SELECT lead.external_id,
       extract(epoch FROM submission.received_at),
       extract(epoch FROM lead.created_at),
       extract(epoch FROM event.handled_at),
       extract(epoch FROM attempt.started_at)
  FROM leads_lead AS lead
  JOIN leads_inboundsubmission AS submission ON submission.lead_id = lead.id AND submission.source = 'facebook'
  JOIN leads_outboxevent AS event ON event.topic = 'lead.created' AND (event.payload->>'lead_id')::bigint = lead.id
  JOIN integrations_webhookmessage AS message ON message.source_key = 'outbox:' || event.id
  JOIN integrations_webhookdelivery AS delivery ON delivery.message_id = message.id
  JOIN integrations_webhookattempt AS attempt ON attempt.delivery_id = delivery.id AND attempt.number = 1
 WHERE lead.source = 'facebook'
"""


def stage_breakdown(dsn: str, sent: dict[str, float], arrived: dict[str, float]) -> dict[str, dict]:
    """p50/p99 of each hop: the webhook POST storing the notification, the Graph fetch and intake (a task), the
    outbox batch writing the webhook (a task), the delivery task starting, and the request reaching the receiver."""
    hops: dict[str, list[float]] = {
        "POST → stored": [],
        "stored → lead created": [],
        "lead → webhook queued": [],
        "queued → sending": [],
        "sending → received": [],
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Fresh tables have no statistics yet: without them the planner nests loops over thousands of rows.
        conn.execute(
            "ANALYZE leads_lead, leads_inboundsubmission, leads_outboxevent, integrations_webhookmessage,"
            " integrations_webhookdelivery, integrations_webhookattempt"
        )
        rows = conn.execute(_STAGES_SQL).fetchall()
    for key, stored, created, handled, started in rows:
        if key not in sent or key not in arrived or None in (stored, created, handled, started):
            continue
        points = [sent[key], float(stored), float(created), float(handled), float(started), arrived[key]]
        for name, (start, end) in zip(hops, itertools.pairwise(points), strict=True):
            hops[name].append((end - start) * 1000)
    return {
        name: {
            "p50_ms": round(loadgen.percentile(values, 50), 1),
            "p99_ms": round(loadgen.percentile(values, 99), 1),
        }
        for name, values in hops.items()
        if values
    }


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    rate = float(os.environ.get("STL_RATE", "50"))
    seconds = float(os.environ.get("STL_SECONDS", "60"))
    drain = float(os.environ.get("STL_DRAIN_SECONDS", "30"))
    graph = graph_stand_in()
    os.environ.update(
        {
            "FACEBOOK_GRAPH_URL": f"http://127.0.0.1:{graph.server_port}",
            "FACEBOOK_GRAPH_VERSION": GRAPH_VERSION,
            "FACEBOOK_APP_SECRET": APP_SECRET,
            "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        }
    )
    config = Config()
    config.port = config.port or free_port()
    # As the Procfile runs it: a lead here costs the worker three tasks, and two processes can use both cores.
    config.celery_concurrency = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "2"))
    env, workdir, _capture, workspace, _results, began = prepare(config)
    receiver = Receiver()
    configure(workspace, receiver)
    servers = Servers(config, env, workdir)
    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    try:
        servers.start()
        log(f"Speed to lead: {rate:.0f} Facebook leads/s for {seconds:.0f} s (logs in {workdir})")
        before, clock = cpu.snapshot(servers.pgids()), time.perf_counter()
        samples = asyncio.run(send(servers.base_url, rate=rate, seconds=seconds, sent=sent, sent_wall=sent_wall))
        deadline = time.perf_counter() + drain
        while time.perf_counter() < deadline and len(receiver.arrived) < len(sent):
            time.sleep(0.2)
        used = cpu.usage(before, cpu.snapshot(servers.pgids()), seconds=time.perf_counter() - clock, requests=len(sent))
    finally:
        servers.stop()
        graph.shutdown()
        receiver.server.shutdown()
    latencies = sorted((times[0] - sent[key]) * 1000 for key, times in receiver.arrived.items() if key in sent)
    last = [times[0] for times in receiver.arrived.values()] or [0.0]
    results = {
        "command": "make bench-speed-to-lead",
        "started_at": started_at,
        "rate_per_s": rate,
        "seconds": seconds,
        "machine": machine_info(config),
        "sent": len(sent),
        "webhook_posts_not_200": sum(not s.ok for s in samples),
        "webhook_post_p99_ms": round(loadgen.percentile([s.ms for s in samples], 99), 1),
        "arrived": len(latencies),
        "lost": len(set(sent) - set(receiver.arrived)),
        "repeated": sum(len(times) - 1 for times in receiver.arrived.values()),
        "bad_signatures": receiver.bad_signatures,
        "p50_ms": round(loadgen.percentile(latencies, 50), 1),
        "p95_ms": round(loadgen.percentile(latencies, 95), 1),
        "p99_ms": round(loadgen.percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        # From the first notification sent to the last lead delivered: what the pipeline kept up with.
        "delivered_per_s": round(len(latencies) / (max(last) - min(sent.values())), 1) if latencies else None,
        "duration_s": round(time.perf_counter() - began, 1),
        # CPU per lead by process, from the first notification to the last delivery (the stand-ins count as the
        # load generator).
        "cpu": used,
    }
    results["stages"] = stage_breakdown(config.dsn, sent_wall, receiver.arrived_wall)
    results["met"] = {
        "p50 ≤ 50 ms": results["p50_ms"] <= 50,
        "p99 ≤ 250 ms": results["p99_ms"] <= 250,
        "zero lost": results["lost"] == 0,
    }
    out = Path(__file__).resolve().parent / "speed_to_lead.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    for key in ("sent", "arrived", "lost", "repeated", "bad_signatures", "webhook_posts_not_200", "delivered_per_s"):
        print(f"{key:>22}: {results[key]}")
    print(f"{'CPU ms per lead':>22}: {used['cpu_ms_per_request']}")
    print(f"{'speed to lead':>22}: p50 {results['p50_ms']} ms, p95 {results['p95_ms']} ms, p99 {results['p99_ms']} ms")
    for name, figures in results["stages"].items():
        print(f"{name:>22}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    print(f"{'targets':>22}: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in results["met"].items()))
    log(f"Wrote {out}")
    return 0 if all(results["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
