"""`make bench-soak`: ingest, distribution, delivery and the inbox together for SOAK_SECONDS (600), served as
production runs them, then proof that nothing was lost and that memory stayed flat.

Served: gunicorn (`bench.wsgi`, gthread, 2 workers x 4 threads), daphne for the websocket, a real Celery worker
(concurrency 2, as in the Procfile) and celery beat (its sweeps are part of the pipeline: lost wake-ups, due
retries), on a fresh `*_bench` database and Redis database (BENCH_DATABASE_URL, BENCH_REDIS_URL). This process plays
everyone else on loopback, all streams at once, open loop (each request sent when due, measured from then):

- **suppliers** post leads to the ingest API with their own keys at SOAK_INGEST_RATE (20/s), spread over
  `bench.distribution`'s campaigns (round robin, weighted, waterfall and broadcast buyers with caps that fill and
  wallets that run dry, and an equal-weight round robin of funded buyers); SOAK_DUPLICATE_SHARE (5 %) repeat a lead
  posted at least 10 s before (half re-deliveries, half the same person under a new id), SOAK_TEST_SHARE (1 %) are
  test leads. Three buyers take their leads by signed webhook at a receiver that verifies every signature;
- **Meta** sends Facebook `leadgen` notifications at SOAK_FACEBOOK_RATE (2/s); the Graph API stand-in answers the
  fetches;
- **Twilio** posts signed inbound SMS at SOAK_SMS_RATE (10/s) from SOAK_SMS_SENDERS (100) numbers, and an agent's
  inbox sits on `/ws/events/` through daphne.

Memory is sampled every SOAK_SAMPLE_SECONDS (10) (`bench.memory`). After the load, SOAK_DRAIN_SECONDS (300) at
most for the pipeline to finish; then the checks, a table, bench/soak.json, and exit 1 when any check fails.
Bounds: SOAK_WARMUP_SECONDS (120) before memory is judged, SOAK_MAX_SLOPE_MB_PER_MIN (1.0), SOAK_MAX_RANGE_MB (16).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg

from . import cpu, loadgen
from .distribution import INGEST, Market, Posted, checks, lead_plan, market_create, verdicts
from .memory import BENCH_APPLICATION_NAME, MemorySampler
from .messaging import InboxWatcher, sender_number
from .run import Config, Servers, free_port, log, machine_info, prepare, worker_backlog
from .standins import (
    FACEBOOK_WEBHOOK_PATH,
    TWILIO_WEBHOOK_PATH,
    GraphStandIn,
    TwilioStandIn,
    WebhookReceiver,
    facebook_page_connect,
    leadgen_id,
    leadgen_notification,
    sale_id_of,
    twilio_inbound,
    twilio_sms_number_configure,
)
from .workspace import member_session_cookie

# Buyers (campaign, index) that take their leads by signed webhook: one whose hourly cap fills (its webhooks stop
# partway) and two uncapped ones (webhooks all the way through).
WEBHOOK_BUYERS = (("capped round robin", 0), ("fair round robin", 0), ("fair round robin", 1))
SUPPLIER_KEYS = 4


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass
class Knobs:
    seconds: float = float(_env("SOAK_SECONDS", "600"))
    ingest_rate: float = float(_env("SOAK_INGEST_RATE", "20"))
    duplicate_share: float = float(_env("SOAK_DUPLICATE_SHARE", "0.05"))
    test_share: float = float(_env("SOAK_TEST_SHARE", "0.01"))
    facebook_rate: float = float(_env("SOAK_FACEBOOK_RATE", "2"))
    sms_rate: float = float(_env("SOAK_SMS_RATE", "10"))
    sms_senders: int = int(_env("SOAK_SMS_SENDERS", "100"))
    sample_seconds: float = float(_env("SOAK_SAMPLE_SECONDS", "10"))
    warmup_seconds: float = float(_env("SOAK_WARMUP_SECONDS", "120"))
    drain_seconds: float = float(_env("SOAK_DRAIN_SECONDS", "300"))
    max_slope_mb_per_min: float = float(_env("SOAK_MAX_SLOPE_MB_PER_MIN", "1.0"))
    max_range_mb: float = float(_env("SOAK_MAX_RANGE_MB", "16"))


@dataclass
class Stream:
    """One open-loop stream's answers: HTTP statuses and (due, latency) points, due in seconds since the start."""

    statuses: Counter = field(default_factory=Counter)
    answered: list[tuple[float, float]] = field(default_factory=list)
    sent: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (due, its perf_counter)
    sent_wall: dict[str, float] = field(default_factory=dict)  # key → due, wall clock (to compare with the database)

    def record(self, status: int, due_s: float, ms: float) -> None:
        self.statuses[status] += 1
        self.answered.append((due_s, ms))

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 or status == 0)


# The workspace ----------------------------------------------------------------------------------------------------


def workspace_configure(workspace, knobs: Knobs, receiver: WebhookReceiver) -> tuple[Market, list[str], str]:
    """The market (bench.distribution's campaigns and buyers), a supplier of all its campaigns with its own keys, the
    Facebook page and the Twilio number; returns the market, the supplier's keys and an agent's session cookie."""
    from accounts.models import Organization
    from campaigns.models import Campaign, Supplier
    from campaigns.services.catalog import supplier_api_key_create, supplier_save
    from messaging.services.channels import messaging_settings_update

    organization = Organization.objects.get(pk=workspace.organization_id)
    leads = knobs.ingest_rate * knobs.seconds * (1 - knobs.duplicate_share)
    market = market_create(
        organization.pk,
        leads_per_campaign=max(1, int(leads / 5)),
        fifty=0,
        receiver=receiver,
        webhook_buyers=WEBHOOK_BUYERS,
    )
    supplier = supplier_save(
        supplier=Supplier(organization=organization),
        data={"name": "Bench Leads Co", "payout_per_lead": Decimal("0.40")},
        campaigns=list(Campaign.objects.unscoped().filter(pk__in=market.campaigns.values())),
    )
    keys = [supplier_api_key_create(supplier=supplier, name=f"soak {n}")[1] for n in range(SUPPLIER_KEYS)]
    facebook_page_connect(organization)
    twilio_sms_number_configure(organization)
    # These leads are sold to buyers, who contact them: escalating every one of them to the seller's managers five
    # minutes later (the first-contact SLA) is not this workspace's business, as the welcome message is not.
    messaging_settings_update(organization=organization, sla_escalation_enabled=False)
    return market, keys, member_session_cookie(organization_id=organization.pk, role="agent")


# The load ---------------------------------------------------------------------------------------------------------


@dataclass
class Load:
    posted: list[Posted]
    ingest: Stream
    facebook: Stream
    sms: Stream
    inbox_arrived: dict[str, list[float]]
    inbox_lost: str  # why and when the server dropped the agent's socket, if it did
    t0: float  # perf_counter when the first requests were due
    ended: float  # perf_counter when the last request was answered
    drain: dict
    # Requests sent again because the server closed their idle keep-alive connection as they were sent.
    stale_connection_resends: int = 0

    @property
    def seconds(self) -> float:
        return self.ended - self.t0


async def soak_load(
    *,
    base_url: str,
    ws_port: int,
    cookie: str,
    keys: list[str],
    market: Market,
    knobs: Knobs,
    dsn: str,
    receiver: WebhookReceiver,
) -> Load:
    campaigns = list(market.campaigns.values())
    plan = lead_plan(
        1,
        count=int(knobs.ingest_rate * knobs.seconds),
        base=0,
        duplicate_share=knobs.duplicate_share,
        test_share=knobs.test_share,
        campaigns=campaigns,
        min_gap=int(knobs.ingest_rate * 10),
    )
    posted: list[Posted | None] = [None] * len(plan)
    ingest, facebook, sms = Stream(), Stream(), Stream()
    site_url = base_url
    watcher = await InboxWatcher.open(ws_port, cookie)
    t0 = time.perf_counter() + 0.05  # when loadgen.paced makes the first requests due
    async with loadgen.LeanClient(base_url, 256) as client:

        async def post(path: str, body: bytes, headers: dict) -> tuple[int, loadgen.Response | None]:
            try:
                response = await client.request_raw("POST", path, headers=headers, body=body)
            except loadgen.TransportError as error:
                log(f"  no answer to POST {path}: {error}")
                return 0, None
            return response.status_code, response

        async def supplier_lead(i: int, due: float) -> None:
            kind, body, n = plan[i]
            headers = {"X-API-Key": keys[i % len(keys)], "Content-Type": "application/json"}
            status, response = await post(INGEST, json.dumps(body).encode(), headers)
            ms = (time.perf_counter() - due) * 1000
            answer = None
            if response is not None:
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
            posted[i] = Posted(n, kind, body["campaign"], status, answer, ms, due - t0)
            ingest.record(status, due - t0, ms)

        async def facebook_lead(n: int, due: float) -> None:
            body, headers = leadgen_notification(n)
            facebook.sent_wall[leadgen_id(n)] = time.time() - (time.perf_counter() - due)
            facebook.sent[leadgen_id(n)] = (due - t0, due)
            status, _ = await post(FACEBOOK_WEBHOOK_PATH, body, headers)
            facebook.record(status, due - t0, (time.perf_counter() - due) * 1000)

        async def inbound_sms(n: int, due: float) -> None:
            token, body, headers = twilio_inbound(n, site_url=site_url, sender=sender_number(n, knobs.sms_senders))
            sms.sent[token] = (due - t0, due)
            status, _ = await post(TWILIO_WEBHOOK_PATH, body, headers)
            sms.record(status, due - t0, (time.perf_counter() - due) * 1000)

        async def progress() -> None:
            while True:
                await asyncio.sleep(60)
                log(
                    f"  {(time.perf_counter() - t0) / 60:.0f} min: answered {len(ingest.answered)} supplier leads, "
                    f"{len(facebook.answered)} Facebook and {len(sms.answered)} Twilio webhooks; "
                    f"{len(watcher.arrived)} messages on the socket, {len(receiver.counts())} buyer webhooks received"
                )

        reporter = asyncio.create_task(progress())
        await asyncio.gather(
            loadgen.paced(range(len(plan)), knobs.ingest_rate, supplier_lead),
            loadgen.paced(range(int(knobs.facebook_rate * knobs.seconds)), knobs.facebook_rate, facebook_lead),
            loadgen.paced(range(int(knobs.sms_rate * knobs.seconds)), knobs.sms_rate, inbound_sms),
        )
    ended = time.perf_counter()
    reporter.cancel()
    log(f"  load done in {ended - t0:.0f} s; draining (at most {knobs.drain_seconds:.0f} s)")
    drain = await drain_pipeline(
        dsn, market=market, receiver=receiver, watcher=watcher, sms=sms, facebook=facebook, seconds=knobs.drain_seconds
    )
    await watcher.close()
    return Load(
        posted=[p for p in posted if p is not None],
        ingest=ingest,
        facebook=facebook,
        sms=sms,
        inbox_arrived=watcher.arrived,
        inbox_lost="" if watcher.connected else f"{watcher.lost_because} at {watcher.lost_at - t0:.0f} s",
        t0=t0,
        ended=ended,
        drain=drain,
        stale_connection_resends=client.stale_retries,
    )


def outstanding(
    conn: psycopg.Connection, *, market: Market, receiver: WebhookReceiver, arrived: set, sms: Stream, facebook: Stream
) -> dict[str, int]:
    """Everything not finished yet: the worker's backlog, and what the outside world has not received."""
    found = worker_backlog(conn)
    webhook_sales = {
        sale_id
        for (sale_id,) in conn.execute(
            "SELECT id FROM campaigns_leadsale WHERE buyer_id = ANY(%s)", (market.webhook_buyers,)
        )
    }
    found["webhook_sales_not_received"] = len(webhook_sales - set(receiver.counts()))
    found["inbound_sms_not_on_the_socket"] = len(set(sms.sent) - set(arrived))
    facebook_leads = {
        external_id for (external_id,) in conn.execute("SELECT external_id FROM leads_lead WHERE source = 'facebook'")
    }
    found["facebook_notifications_without_a_lead"] = len(set(facebook.sent) - facebook_leads)
    return found


async def drain_pipeline(dsn: str, *, market, receiver, watcher, sms, facebook, seconds: float) -> dict:
    """Wait until nothing is outstanding (or ``seconds`` passed), the websocket still listening."""
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APPLICATION_NAME) as conn:
        while True:
            # The socket's arrivals are copied here, in the event loop that adds to them; the queries run aside.
            arrived = set(watcher.arrived)
            left = await asyncio.to_thread(
                outstanding, conn, market=market, receiver=receiver, arrived=arrived, sms=sms, facebook=facebook
            )
            # A socket the server dropped receives nothing more: what it missed is lost, not late.
            waiting = {k: v for k, v in left.items() if watcher.connected or k != "inbound_sms_not_on_the_socket"}
            if not any(waiting.values()) or time.perf_counter() - began > seconds:
                return {"seconds": round(time.perf_counter() - began, 1), "left": left}
            await asyncio.sleep(2)


# Figures ----------------------------------------------------------------------------------------------------------


def latency_streams(
    load: Load, receiver: WebhookReceiver, market: Market, dsn: str
) -> dict[str, list[tuple[float, float]]]:
    """(due in seconds since the start, milliseconds) per stream: the HTTP answers, and end to end — an ingested
    lead's webhook reaching its buyer, a notification's Facebook lead stored, an inbound SMS on the agent's socket."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        sale_leads = dict(
            conn.execute(
                "SELECT id, lead_id FROM campaigns_leadsale WHERE buyer_id = ANY(%s)", (market.webhook_buyers,)
            )
        )
        facebook_stored = dict(
            conn.execute("SELECT external_id, extract(epoch FROM created_at) FROM leads_lead WHERE source = 'facebook'")
        )
    due_by_lead = {
        p.body["id"]: p.due for p in load.posted if p.status == 201 and p.body and p.kind in ("original", "test")
    }
    webhook = []
    for sale_id, times in receiver.arrived.items():
        due = due_by_lead.get(sale_leads.get(sale_id))
        if due is not None:
            webhook.append((due, (times[0] - load.t0 - due) * 1000))
    stored = [
        (due, (float(facebook_stored[key]) - load.facebook.sent_wall[key]) * 1000)
        for key, (due, _) in load.facebook.sent.items()
        if key in facebook_stored
    ]
    inbox = [
        (due, (load.inbox_arrived[token][0] - at) * 1000)
        for token, (due, at) in load.sms.sent.items()
        if token in load.inbox_arrived
    ]
    return {
        "supplier ingest answered": load.ingest.answered,
        "buyer webhook received": webhook,
        "Facebook webhook answered": load.facebook.answered,
        "Facebook lead stored": stored,
        "Twilio webhook answered": load.sms.answered,
        "inbox message on the socket": inbox,
    }


def per_minute(streams: dict[str, list[tuple[float, float]]]) -> dict[str, list[dict]]:
    return {name: loadgen.windows(points, seconds=60) for name, points in streams.items()}


def overall(points: list[tuple[float, float]]) -> dict:
    values = [ms for _, ms in points]
    return {
        "count": len(values),
        "p50_ms": round(loadgen.percentile(values, 50), 1),
        "p99_ms": round(loadgen.percentile(values, 99), 1),
        "max_ms": round(max(values), 1) if values else None,
    }


def delivery_checks(load: Load, receiver: WebhookReceiver, drain_left: dict) -> dict:
    """Beyond bench.distribution's checks: the Facebook and Twilio streams, and the pipeline drained."""
    arrived = load.inbox_arrived
    return {
        "facebook_notifications": len(load.facebook.sent),
        "facebook_not_200": sum(n for status, n in load.facebook.statuses.items() if status != 200),
        "facebook_notifications_without_a_lead": drain_left["facebook_notifications_without_a_lead"],
        "inbound_sms": len(load.sms.sent),
        "sms_not_200": sum(n for status, n in load.sms.statuses.items() if status != 200),
        "inbound_sms_lost": len(set(load.sms.sent) - set(arrived)),
        "inbound_sms_twice_on_the_socket": sum(len(times) - 1 for times in arrived.values()),
        "inbox_socket_dropped_by_the_server": load.inbox_lost,
        "server_errors_all_streams": load.ingest.server_errors + load.facebook.server_errors + load.sms.server_errors,
        "backlog_after_drain": {k: v for k, v in drain_left.items() if k in BACKLOG_KEYS},
    }


BACKLOG_KEYS = (
    "outbox_events_unhandled",
    "submissions_received_or_failed",
    "provider_events_received_or_failed",
    "sales_not_planned",
    "sale_deliveries_pending_or_failed",
    "webhook_deliveries_pending",
    "webhook_deliveries_failed",
)


def memory_verdicts(sampler: MemorySampler, knobs: Knobs, load: Load) -> dict:
    """From the warm-up's end to the last answer (the sampler's clock started just before the load)."""
    return sampler.verdicts(
        warmup_s=knobs.warmup_seconds,
        until_s=load.ended - sampler.started_at,
        max_slope_mb_per_min=knobs.max_slope_mb_per_min,
        max_range_mb=knobs.max_range_mb,
    )


# Report -----------------------------------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def print_report(results: dict) -> None:
    minutes = results["latency_per_minute"]
    names = list(minutes)
    count = max((w["window"] for windows in minutes.values() for w in windows), default=-1) + 1
    rows = []
    for minute in range(count):
        row = [str(minute + 1)]
        for name in names:
            found = next((w for w in minutes[name] if w["window"] == minute), None)
            row.append(f"{found['p50_ms']:.0f} / {found['p99_ms']:.0f}" if found else "–")
        rows.append(row)
    rows.append(
        ["all", *(f"{results['latency'][n]['p50_ms']:.0f} / {results['latency'][n]['p99_ms']:.0f}" for n in names)]
    )
    print("\nLatency p50 / p99 (ms) by minute of the run, by when each was due\n")
    print(table(rows, ["minute", *names]))
    memory_rows = []
    for label, verdict in results["memory"].items():
        if verdict.get("flat") is None:
            memory_rows.append([label, str(verdict["samples"]), "–", "–", "–", "–", verdict.get("why", "")])
            continue
        memory_rows.append(
            [
                label,
                str(verdict["samples"]),
                f"{verdict['first_mb']:.1f}",
                f"{verdict['last_mb']:.1f}",
                f"{verdict['slope_mb_per_min']:+.3f}",
                f"{verdict['range_mb']:.1f}",
                ("yes" if verdict["flat"] else "NO") if verdict["judged"] else "(shown)",
            ]
        )
    knobs = results["knobs"]
    print(
        f"\nMemory after the {knobs['warmup_seconds']:.0f} s warm-up until the load ended (flat: slope < "
        f"{knobs['max_slope_mb_per_min']} MB/min and max − min < {knobs['max_range_mb']} MB)\n"
    )
    print(table(memory_rows, ["series", "samples", "first MB", "last MB", "MB/min", "max−min MB", "flat"]))
    print("\nChecks\n")
    print(table([["yes" if ok else "NO", name] for name, ok in results["met"].items()], ["met", "check"]))


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    knobs = Knobs()
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    graph, twilio, receiver = GraphStandIn(), TwilioStandIn(), WebhookReceiver(sale_id_of)
    config = Config()
    config.port = config.port or free_port()
    config.celery_concurrency = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "2"))  # as the Procfile runs it
    os.environ.update(
        {
            **graph.environment(),
            **twilio.environment(),
            "SITE_URL": f"http://127.0.0.1:{config.port}",  # what Twilio signs: the public URL of the webhook
            "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",  # the buyers' receiver is on loopback
        }
    )
    # Persistent connections outlive the run: a backend recycled at CONN_MAX_AGE (600 s) starts again with empty
    # caches, which would read as memory given back and hide a backend that grows. Kept, every one is judged whole.
    os.environ.setdefault("BENCH_CONN_MAX_AGE", str(int(knobs.seconds + knobs.drain_seconds + 600)))
    env, workdir, _capture, workspace, _results, began = prepare(config)
    market, keys, cookie = workspace_configure(workspace, knobs, receiver)
    from django.db import connections

    connections.close_all()  # this process's backend would count in PostgreSQL's memory for the whole run
    servers = Servers(config, env, workdir)
    ws_port = free_port()
    results: dict = {
        "command": "make bench-soak" + (f" (SOAK_SECONDS={knobs.seconds:g})" if knobs.seconds != 600 else ""),
        "started_at": started_at,
        "knobs": asdict(knobs),
        "machine": machine_info(config),
        "processes": f"gunicorn gthread {config.workers}x{config.threads}, celery worker concurrency "
        f"{config.celery_concurrency}, celery beat, daphne",
    }
    sampler = None
    try:
        servers.start()
        servers.start_daphne(ws_port)
        servers.start_beat()
        log(
            f"Soak for {knobs.seconds:.0f} s: {knobs.ingest_rate:g} supplier leads/s, {knobs.facebook_rate:g} Facebook "
            f"leads/s, {knobs.sms_rate:g} inbound SMS/s (logs in {workdir})"
        )
        sampler = MemorySampler(
            groups=servers.pgids(),
            dsn=config.dsn,
            database=config.database_name,
            redis_url=config.redis_url,
            every=knobs.sample_seconds,
        )
        sampler.start()
        before = cpu.snapshot(servers.pgids())
        load = asyncio.run(
            soak_load(
                base_url=servers.base_url,
                ws_port=ws_port,
                cookie=cookie,
                keys=keys,
                market=market,
                knobs=knobs,
                dsn=config.dsn,
                receiver=receiver,
            )
        )
        used = cpu.usage(
            before,
            cpu.snapshot(servers.pgids()),
            seconds=time.perf_counter() - sampler.started_at,
            requests=len(load.posted) + len(load.facebook.sent) + len(load.sms.sent),
        )
    finally:
        try:
            if sampler is not None:
                sampler.stop()  # before the servers stop: their exit is not a process lost during the run
        finally:
            servers.stop()
            for stand_in in (graph, twilio, receiver):
                stand_in.shutdown()
    found = checks(config.dsn, workspace.organization_id, market, load.posted, receiver)
    found.update(delivery_checks(load, receiver, load.drain["left"]))
    streams = latency_streams(load, receiver, market, config.dsn)
    results["load"] = {
        "seconds": round(load.seconds, 1),
        "supplier_requests": len(load.posted),
        "facebook_notifications": len(load.facebook.sent),
        "inbound_sms": len(load.sms.sent),
        "stale_connection_resends": load.stale_connection_resends,
        "statuses": {
            "supplier ingest": dict(sorted((str(k), v) for k, v in load.ingest.statuses.items())),
            "facebook": dict(sorted((str(k), v) for k, v in load.facebook.statuses.items())),
            "twilio": dict(sorted((str(k), v) for k, v in load.sms.statuses.items())),
        },
        "cpu": used,
    }
    results["drain"] = load.drain
    results["checks"] = found
    results["latency"] = {name: overall(points) for name, points in streams.items()}
    results["latency_per_minute"] = per_minute(streams)
    results["memory"] = memory_verdicts(sampler, knobs, load)
    results["memory_samples"] = {label: series.points for label, series in sampler.series.items()}
    results["postgres_backends_summed"] = sampler.backends
    results["redis_bench_db_keys"] = sampler.bench_db_keys
    results["processes_exited"] = sampler.exited
    results["processes_appeared"] = sampler.appeared
    if sampler.error:
        results["sampler_error"] = sampler.error
    judged = [v for v in results["memory"].values() if v["judged"]]
    met = verdicts(found)
    met |= {
        "Facebook: every notification answered 200 and stored as a lead": not (
            found["facebook_not_200"] or found["facebook_notifications_without_a_lead"]
        ),
        "inbox: every inbound SMS answered 200, on the agent's socket exactly once": not (
            found["sms_not_200"] or found["inbound_sms_lost"] or found["inbound_sms_twice_on_the_socket"]
        ),
        "inbox: the agent's socket stayed open": not found["inbox_socket_dropped_by_the_server"],
        "no 5xx on any stream": found["server_errors_all_streams"] == 0,
        "pipeline drained: outbox empty, every submission and provider event processed, every delivery sent": not any(
            found["backlog_after_drain"].values()
        ),
        "no server process exited or was replaced": not sampler.exited and not sampler.appeared,
        "memory flat (every judged series)": bool(judged) and all(v["flat"] for v in judged) and not sampler.error,
    }
    results["met"] = met
    results["duration_s"] = round(time.perf_counter() - began, 1)
    out = Path(__file__).resolve().parent / "soak.json"
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n")
    print_report(results)
    log(f"\nWrote {out}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
