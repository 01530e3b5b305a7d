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
import itertools
import json
import os
import signal
import sys
import time
from pathlib import Path

import psycopg

from . import cpu, loadgen
from .run import Config, Servers, free_port, log, machine_info, prepare
from .standins import (
    FACEBOOK_WEBHOOK_PATH,
    GraphStandIn,
    WebhookReceiver,
    facebook_page_connect,
    leadgen_id,
    leadgen_notification,
)

RECEIVER_PATH = "/leadflow-hooks"


def created_lead_of(payload: dict) -> str | None:
    """The customer's ``lead.created`` webhook, counted by the lead's external id (the leadgen id)."""
    data = payload.get("data") or {}
    lead = data.get("lead", data)
    key = str(lead.get("external_id") or "")
    return key if payload.get("type") == "lead.created" and key else None


def configure(workspace, receiver: WebhookReceiver) -> None:
    """The measured organization gets a Facebook page connection and a webhook endpoint for lead.created."""
    from accounts.models import Organization
    from integrations.services.webhooks import webhook_endpoint_create
    from leadflow.tenancy.context import organization_scope

    organization = Organization.objects.get(pk=workspace.organization_id)
    facebook_page_connect(organization)
    with organization_scope(organization):
        endpoint = webhook_endpoint_create(
            organization=organization,
            url=receiver.url(RECEIVER_PATH),
            events=["lead.created"],
            description="speed to lead",
        )
    receiver.secrets[RECEIVER_PATH] = endpoint.secret


async def send(
    base_url: str, *, rate: float, seconds: float, sent: dict[str, float], sent_wall: dict[str, float]
) -> list[loadgen.Sample]:
    """Open loop: notification n is due at n / rate; its clock starts when it is due."""
    samples: list[loadgen.Sample] = []
    async with loadgen.LeanClient(base_url, 64) as client:

        async def one(n: int, due: float):
            body, headers = leadgen_notification(n)
            sent[leadgen_id(n)] = due
            sent_wall[leadgen_id(n)] = time.time() - (time.perf_counter() - due)
            try:
                response = await client.request_raw("POST", FACEBOOK_WEBHOOK_PATH, headers=headers, body=body)
                ok, status, detail = response.status_code == 200, response.status_code, response.text[:200]
            except loadgen.TransportError as error:
                ok, status, detail = False, 0, str(error)
            ms = (time.perf_counter() - due) * 1000
            samples.append(loadgen.Sample("facebook-webhook", ms, status, 0, ok, ms, "" if ok else detail))

        await loadgen.paced(range(int(rate * seconds)), rate, one)
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
    graph = GraphStandIn()
    os.environ.update({**graph.environment(), "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true"})
    config = Config()
    config.port = config.port or free_port()
    # As the Procfile runs it: a lead here costs the worker three tasks, and two processes can use both cores.
    config.celery_concurrency = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "2"))
    env, workdir, _capture, workspace, _results, began = prepare(config)
    receiver = WebhookReceiver(created_lead_of)
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
        receiver.shutdown()
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
