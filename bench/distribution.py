"""`make bench-distribution`: selling leads under load, over HTTP, and what distribution costs an ingest request.

Served as `make bench` serves LeadFlow (gunicorn, a real Celery worker, `leadflow.settings.bench`, a freshly made
`*_bench` database; BENCH_DATABASE_URL and BENCH_REDIS_URL say which). Two measurements:

1. **Correctness under load.** DIST_CLIENTS (8) clients each post DIST_LEADS_PER_CLIENT (10,000) leads, one request
   in flight per client, to `POST /api/v1/leads/ingest/` with a `campaign`. 5 % are duplicates of a lead the same
   client posted earlier (half re-deliveries of the same body, half the same person under a new external id), 1 %
   are test leads. The campaigns' buyers have tight caps and small wallets (round robin, weighted, waterfall,
   broadcast), plus an equal-weight round robin of uncapped, funded buyers. One capped buyer receives a signed
   webhook per sale at a loopback receiver. Afterwards the database and the responses are checked: no lead lost,
   none sold twice (the same lead, the same person, a duplicate or a test lead), no 5xx, no cap or wallet
   exceeded, every wallet equal to its ledger, every answer's sales equal to the stored ones, the round robin
   spread at most 1, and every webhook sale delivered exactly once with a valid signature.
2. **Latency.** Open loop at DIST_LATENCY_RATE (20/s): ingest without a campaign and ingest into a campaign with
   DIST_BUYERS (50) subscribed buyers, alternating in DIST_LATENCY_CHUNK_SECONDS (10 s) chunks for
   DIST_LATENCY_SECONDS (60 s) each, so drift on a shared machine hits both alike. The difference of the p99s is
   what distribution adds (target ≤ 10 ms). A minute each (1,200 requests) rather than half: the p99 of 600 is the
   sixth-slowest request, and one stall of the whole VM (every process, the worker's tasks too, stopped for
   ~200 ms, seen about once a minute on the shared two-core machine) made three or four of them in whichever arm
   it fell.

Exits 1 when a check fails. Writes bench/distribution.json. Other knobs: DIST_DRAIN_SECONDS (180, waiting for the
worker's deliveries), DIST_SKIP_LATENCY=1, and bench/run.py's BENCH_* (workers, threads, Celery concurrency, port).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg

from . import cpu, loadgen
from .data import ingest_payload
from .run import Config, Servers, log, machine_info, prepare, worker_backlog
from .standins import WebhookReceiver, sale_id_of

INGEST = "/api/v1/leads/ingest/"
PRICE = Decimal("1.00")
TEST_TAG = "test-lead"


@dataclass
class Settings:
    clients: int = int(os.environ.get("DIST_CLIENTS", "8"))
    leads_per_client: int = int(os.environ.get("DIST_LEADS_PER_CLIENT", "10000"))
    duplicate_share: float = float(os.environ.get("DIST_DUPLICATE_SHARE", "0.05"))
    test_share: float = float(os.environ.get("DIST_TEST_SHARE", "0.01"))
    buyers: int = int(os.environ.get("DIST_BUYERS", "50"))
    latency_rate: float = float(os.environ.get("DIST_LATENCY_RATE", "20"))
    latency_seconds: float = float(os.environ.get("DIST_LATENCY_SECONDS", "60"))
    chunk_seconds: float = float(os.environ.get("DIST_LATENCY_CHUNK_SECONDS", "10"))
    drain_seconds: float = float(os.environ.get("DIST_DRAIN_SECONDS", "180"))
    skip_latency: bool = os.environ.get("DIST_SKIP_LATENCY", "") == "1"

    @property
    def requests(self) -> int:
        return self.clients * self.leads_per_client


# The market ---------------------------------------------------------------------------------------------------------


@dataclass
class Market:
    campaigns: dict[str, int] = field(default_factory=dict)  # name → id, in the order leads are spread over them
    fair_buyers: list[int] = field(default_factory=list)
    webhook_buyers: list[int] = field(default_factory=list)
    latency_campaign: int = 0


def market_create(
    organization_id: int,
    *,
    leads_per_campaign: int,
    fifty: int,
    receiver: WebhookReceiver,
    webhook_buyers: tuple[tuple[str, int], ...] = (("capped round robin", 0),),
) -> Market:
    """Through the services: a category (one required custom field), the campaigns, their buyers and wallets.

    ``webhook_buyers`` (campaign name, buyer's index in it) receive each of their sales as a signed webhook at
    ``receiver``; ``fifty`` buyers share a campaign of their own for the latency measurement (none: no campaign)."""
    from accounts.models import Organization
    from campaigns.models import Buyer, BuyerSubscription, Campaign, Category
    from campaigns.services.catalog import buyer_save, campaign_save, category_save, subscription_save
    from campaigns.services.deliveries import delivery_method_create
    from campaigns.services.wallets import wallet_credit

    organization = Organization.objects.get(pk=organization_id)
    category = category_save(
        category=Category(organization=organization),
        data={
            "name": "Home loans",
            "slug": "home-loans",
            "fields": [{"name": "budget", "label": "Budget", "type": "number", "required": True}],
        },
    )
    # Caps and wallets scale with the leads each campaign gets, so they bind in a short run as in a long one.
    cap = max(4, leads_per_campaign // 12)
    tight = [
        {"hourly_cap": cap, "funds": cap * 1.5},
        {"daily_cap": cap // 2 + 1, "funds": cap * 3},
        {"hourly_cap": cap * 2, "funds": cap * 0.7, "credit_limit": 5},
        {"daily_cap": cap, "funds": cap * 0.9, "weight": 3},
    ]
    layouts = {
        "capped round robin": ("round_robin", tight),
        "capped weighted": ("weighted", tight),
        "capped waterfall": ("waterfall", [dict(spec, priority=n) for n, spec in enumerate(tight)]),
        "capped broadcast": ("broadcast", tight),
        "fair round robin": ("round_robin", [{"funds": 10**7} for _ in range(4)]),
    }
    market = Market()

    def buyer(name: str, spec: dict) -> Buyer:
        made = buyer_save(
            buyer=Buyer(organization=organization),
            data={"name": name, "timezone": "Etc/UTC", "credit_limit": Decimal(str(spec.get("credit_limit", 0)))},
        )
        wallet_credit(buyer=made, amount=Decimal(str(spec["funds"])).quantize(Decimal("0.01")), note="Bench funds")
        return made

    def campaign(name: str, logic: str) -> Campaign:
        return campaign_save(
            campaign=Campaign(organization=organization),
            data={"category": category, "name": name, "price_per_lead": PRICE, "distribution_logic": logic},
        )

    for name, (logic, specs) in layouts.items():
        made = campaign(name, logic)
        market.campaigns[name] = made.pk
        for n, spec in enumerate(specs):
            who = buyer(f"{name} buyer {n + 1}", spec)
            fields = {k: spec[k] for k in ("hourly_cap", "daily_cap", "weight", "priority") if k in spec}
            subscription_save(
                subscription=BuyerSubscription(organization=organization),
                data={"buyer": who, "campaign": made, **fields},
            )
            if name == "fair round robin":
                market.fair_buyers.append(who.pk)
            if (name, n) in webhook_buyers:
                path = f"/buyer-webhook/{who.pk}"
                method = delivery_method_create(buyer=who, kind="webhook", url=receiver.url(path))
                receiver.secrets[path] = method.webhook_endpoint.secret
                market.webhook_buyers.append(who.pk)
    if not fifty:
        return market
    latency = campaign(f"{fifty} buyers", "round_robin")
    market.latency_campaign = latency.pk
    for n in range(fifty):
        who = buyer(f"Latency buyer {n + 1}", {"funds": 10**7})
        subscription_save(
            subscription=BuyerSubscription(organization=organization), data={"buyer": who, "campaign": latency}
        )
    return market


# Load ---------------------------------------------------------------------------------------------------------------


@dataclass
class Posted:
    n: int
    kind: str  # original, redelivery, same_person, test
    campaign: int
    status: int
    body: dict | None
    ms: float
    due: float = 0.0  # seconds since the load began (open loop)


def lead_plan(
    seed: int,
    *,
    count: int,
    base: int,
    duplicate_share: float,
    test_share: float,
    campaigns: list[int],
    min_gap: int = 0,
) -> list[tuple[str, dict, int]]:
    """``count`` requests in order: leads numbered from ``base`` spread over ``campaigns``; a duplicate repeats a
    lead posted at least ``min_gap`` requests earlier (with requests in flight at once, an original still being
    answered could otherwise lose the race to its own duplicate)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible load, not security
    plan, mine = [], []
    for i in range(count):
        earlier = len(mine) - min_gap
        if earlier > 0 and rng.random() < duplicate_share:
            n, body = mine[rng.randrange(earlier)]  # what rng.choice(mine[:earlier]) picks, without the copy
            if rng.random() < 0.5:
                plan.append(("redelivery", dict(body), n))
            else:
                plan.append(("same_person", {**body, "external_id": f"{body['external_id']}-again-{i}"}, n))
            continue
        n = base + i
        body = ingest_payload(n, run=1)
        body["campaign"] = campaigns[n % len(campaigns)]
        kind = "original"
        if rng.random() < test_share:
            body["tags"] = [*body.get("tags", []), TEST_TAG]
            kind = "test"
        plan.append((kind, body, n))
        mine.append((n, body))
    return plan


def client_plan(client: int, settings: Settings, campaigns: list[int]) -> list[tuple[str, dict, int]]:
    """One client's requests in order (one in flight, so a duplicate may repeat the lead just answered)."""
    return lead_plan(
        client,
        count=settings.leads_per_client,
        base=client * settings.leads_per_client,
        duplicate_share=settings.duplicate_share,
        test_share=settings.test_share,
        campaigns=campaigns,
    )


async def post_all(base_url: str, keys: list[str], settings: Settings, campaigns: list[int]) -> tuple[list, float]:
    posted: list[Posted] = []

    async def client(index: int):
        plan = client_plan(index, settings, campaigns)
        async with loadgen.LeanClient(base_url, 1) as lean:
            for number, (kind, body, n) in enumerate(plan):
                key = keys[(index + number * settings.clients) % len(keys)]
                started = time.perf_counter()
                try:
                    response = await lean.request("POST", INGEST, headers={"X-API-Key": key}, json_body=body)
                    status, parsed = response.status_code, _json(response)
                except loadgen.TransportError:
                    status, parsed = 0, None
                ms = (time.perf_counter() - started) * 1000
                posted.append(Posted(n, kind, body["campaign"], status, parsed, ms))

    began = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(settings.clients)))
    return posted, time.perf_counter() - began


def _json(response):
    try:
        return response.json()
    except ValueError:
        return None


def latency_phase(servers: Servers, keys: list[str], settings: Settings, campaign_id: int) -> dict:
    """Alternate plain ingest and ingest into the many-buyer campaign, open loop, same rate."""
    arms: dict[str, list[float]] = {"without": [], "with": []}
    errors: Counter = Counter()
    counters = {"without": 0, "with": 0}
    stolen = {"without": 0.0, "with": 0.0}
    order = ["without", "with", "with", "without"]
    chunks = max(1, round(settings.latency_seconds / settings.chunk_seconds))
    for chunk in range(chunks * 2):
        arm = order[chunk % len(order)]
        offset, run = counters[arm], 2 if arm == "without" else 3

        def make(i: int, arm=arm, offset=offset, run=run) -> loadgen.Request:
            body = ingest_payload(offset + i, run=run)
            if arm == "with":
                body["campaign"] = campaign_id
            return loadgen.Request("POST", INGEST, keys[(offset + i) % len(keys)], arm, body)

        def accept(response, arm=arm) -> bool:
            if response.status_code != 201:
                return False
            distribution = response.json().get("distribution")
            return arm == "without" or (distribution or {}).get("status") == "sold"

        steal_before = cpu.stolen_seconds()
        result = asyncio.run(
            loadgen.open_loop(
                servers.base_url,
                make,
                rate=settings.latency_rate,
                seconds=settings.chunk_seconds,
                accept=accept,
            )
        )
        stolen[arm] += cpu.stolen_seconds() - steal_before
        counters[arm] += len(result.samples)
        arms[arm] += [s.ms for s in result.samples if s.ok]
        errors[arm] += len(result.errors())
    summary = {}
    for arm, values in arms.items():
        summary[arm] = {
            "requests": len(values) + errors[arm],
            "errors": errors[arm],
            "p50_ms": round(loadgen.percentile(values, 50), 2),
            "p95_ms": round(loadgen.percentile(values, 95), 2),
            "p99_ms": round(loadgen.percentile(values, 99), 2),
            # What the hypervisor took from this VM during the arm's chunks: a burst stops every process at once and
            # lands in whichever arm is running (reported, never subtracted).
            "cpu_stolen_s": round(stolen[arm], 2),
        }
    summary["p99_added_ms"] = round(summary["with"]["p99_ms"] - summary["without"]["p99_ms"], 2)
    summary["p50_added_ms"] = round(summary["with"]["p50_ms"] - summary["without"]["p50_ms"], 2)
    return summary


# Checks -------------------------------------------------------------------------------------------------------------


def drain(dsn: str, seconds: float) -> dict:
    """Wait for the worker to plan every sale's deliveries and send the webhooks."""
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            backlog = worker_backlog(conn)
            unplanned, pending = backlog["sales_not_planned"], backlog["webhook_deliveries_pending"]
            if (unplanned == 0 and pending == 0) or time.perf_counter() - began > seconds:
                return {
                    "unplanned_sales": unplanned,
                    "pending_webhooks": pending,
                    "drain_s": round(time.perf_counter() - began, 1),
                }
            time.sleep(1)


def checks(dsn: str, organization_id: int, market: Market, posted: list[Posted], receiver: WebhookReceiver) -> dict:
    found: dict[str, object] = {}
    by_n: dict[int, list[Posted]] = defaultdict(list)
    for item in posted:
        by_n[item.n].append(item)
    statuses = Counter(item.status for item in posted)
    found["responses"] = dict(sorted((str(k), v) for k, v in statuses.items()))
    found["server_errors"] = sum(v for k, v in statuses.items() if k >= 500 or k == 0)
    found["unexpected_status"] = sum(
        1
        for item in posted
        if (item.kind in ("original", "test") and item.status != 201)
        or (item.kind in ("redelivery", "same_person") and item.status != 200)
    )
    with psycopg.connect(dsn, autocommit=True) as conn:

        def one(sql: str, *params):
            return conn.execute(sql, params).fetchone()[0]

        external = dict(
            conn.execute(
                "SELECT external_id, id FROM leads_lead WHERE organization_id = %s AND external_id LIKE 'BENCH-1-%%'",
                (organization_id,),
            ).fetchall()
        )
        originals = [items[0] for items in by_n.values() if items[0].kind in ("original", "test")]
        found["originals"] = len(originals)
        found["lost"] = sum(1 for item in originals if f"BENCH-1-{item.n}" not in external)
        # A re-delivery answers with the original lead; a same-person duplicate names it as duplicate_of.
        wrong_dup_answers = 0
        for items in by_n.values():
            original_id = external.get(f"BENCH-1-{items[0].n}")
            for item in items[1:]:
                body = item.body or {}
                expected = body.get("id") if item.kind == "redelivery" else body.get("duplicate_of")
                wrong_dup_answers += expected != original_id
        found["duplicate_answers_wrong"] = wrong_dup_answers
        campaign_ids = list(market.campaigns.values())
        found["accepted_not_distributed"] = one(
            """SELECT count(*) FROM campaigns_campaignsubmission s
               WHERE s.organization_id = %s AND s.outcome = 'accepted' AND NOT s.is_test AND s.campaign_id = ANY(%s)
                 AND NOT EXISTS (SELECT 1 FROM campaigns_leaddistribution d
                                 WHERE d.lead_id = s.lead_id AND d.campaign_id = s.campaign_id)""",
            organization_id,
            campaign_ids,
        )
        found["lead_sold_twice_to_a_buyer"] = one(
            "SELECT count(*) FROM (SELECT 1 FROM campaigns_leadsale WHERE organization_id = %s "
            "GROUP BY lead_id, buyer_id HAVING count(*) > 1) x",
            organization_id,
        )
        person = """SELECT count(*) FROM (SELECT 1 FROM campaigns_leadsale s JOIN leads_lead l ON l.id = s.lead_id
                    WHERE s.organization_id = %s AND l.{0} <> '' GROUP BY s.buyer_id, s.campaign_id, l.{0}
                    HAVING count(*) > 1) x"""
        found["person_sold_twice_to_a_buyer"] = one(person.format("email"), organization_id) + one(
            person.format("phone"), organization_id
        )
        found["duplicates_sold"] = one(
            "SELECT count(*) FROM campaigns_leadsale s JOIN leads_lead l ON l.id = s.lead_id "
            "WHERE s.organization_id = %s AND l.duplicate_of_id IS NOT NULL",
            organization_id,
        )
        found["test_leads_sold"] = one(
            "SELECT count(*) FROM campaigns_leadsale s JOIN leads_lead l ON l.id = s.lead_id "
            "WHERE s.organization_id = %s AND %s = ANY(l.tags)",
            organization_id,
            TEST_TAG,
        )
        cap_rows = conn.execute(
            """SELECT sub.id, sub.hourly_cap, sub.daily_cap,
                      coalesce(max(h.n), 0), coalesce(max(d.n), 0)
               FROM campaigns_buyersubscription sub
               LEFT JOIN (SELECT subscription_id, count(*) n FROM campaigns_leadsale
                          GROUP BY subscription_id, date_trunc('hour', created_at AT TIME ZONE 'UTC')) h
                      ON h.subscription_id = sub.id
               LEFT JOIN (SELECT subscription_id, count(*) n FROM campaigns_leadsale
                          GROUP BY subscription_id, date_trunc('day', created_at AT TIME ZONE 'UTC')) d
                      ON d.subscription_id = sub.id
               WHERE sub.organization_id = %s AND (sub.hourly_cap IS NOT NULL OR sub.daily_cap IS NOT NULL)
               GROUP BY sub.id""",
            (organization_id,),
        ).fetchall()
        found["capped_subscriptions"] = len(cap_rows)
        found["caps_exceeded"] = sum(
            1
            for _, hourly, daily, most_hour, most_day in cap_rows
            if (hourly is not None and most_hour > hourly) or (daily is not None and most_day > daily)
        )
        found["subscriptions_at_cap"] = sum(
            1
            for _, hourly, daily, most_hour, most_day in cap_rows
            if (hourly is not None and most_hour == hourly) or (daily is not None and most_day == daily)
        )
        wallets = conn.execute(
            """SELECT w.balance, b.credit_limit, coalesce(sum(e.amount), 0),
                      (SELECT balance_after FROM campaigns_walletentry x WHERE x.buyer_id = w.buyer_id
                       ORDER BY x.id DESC LIMIT 1)
               FROM campaigns_wallet w JOIN campaigns_buyer b ON b.id = w.buyer_id
               LEFT JOIN campaigns_walletentry e ON e.buyer_id = w.buyer_id
               WHERE w.organization_id = %s GROUP BY w.buyer_id, w.balance, b.credit_limit""",
            (organization_id,),
        ).fetchall()
        found["wallets_below_credit_limit"] = sum(1 for balance, limit, _, _ in wallets if balance < -limit)
        found["wallets_not_equal_to_ledger"] = sum(
            1 for balance, _, ledger, last in wallets if balance != ledger or (last is not None and last != balance)
        )
        found["wallets_emptied"] = sum(1 for balance, limit, _, _ in wallets if balance - PRICE < -limit)
        reasons = dict(
            conn.execute(
                """SELECT r.value, count(*) FROM campaigns_leaddistribution d, jsonb_each_text(d.reasons) r
                   WHERE d.organization_id = %s AND d.campaign_id = ANY(%s) GROUP BY 1""",
                (organization_id, campaign_ids),
            ).fetchall()
        )
        found["unsold_reasons"] = dict(sorted(reasons.items(), key=lambda item: -item[1]))
        stored = defaultdict(set)
        for lead_id, buyer_id in conn.execute(
            "SELECT s.lead_id, s.buyer_id FROM campaigns_leadsale s JOIN campaigns_leaddistribution d "
            "ON d.id = s.distribution_id WHERE s.organization_id = %s AND d.round = 1",
            (organization_id,),
        ):
            stored[lead_id].add(buyer_id)
        mismatched = 0
        for item in originals:
            body = item.body or {}
            distribution = body.get("distribution") or {}
            answered = {sale["buyer"] for sale in distribution.get("sales", [])}
            mismatched += answered != stored.get(body.get("id"), set())
        found["answers_not_matching_the_sales"] = mismatched
        fair = dict(
            conn.execute(
                "SELECT buyer_id, count(*) FROM campaigns_leadsale WHERE buyer_id = ANY(%s) GROUP BY 1",
                (market.fair_buyers,),
            ).fetchall()
        )
        counts = [fair.get(buyer_id, 0) for buyer_id in market.fair_buyers]
        found["fair_round_robin_sales"] = counts
        found["fair_round_robin_spread"] = max(counts) - min(counts)
        found["sales"] = one("SELECT count(*) FROM campaigns_leadsale WHERE organization_id = %s", organization_id)
        webhook_sales = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM campaigns_leadsale WHERE buyer_id = ANY(%s) AND campaign_id = ANY(%s)",
                (market.webhook_buyers, campaign_ids),
            )
        }
    received = receiver.counts()
    found["webhook_sales"] = len(webhook_sales)
    found["webhooks_missing"] = len(webhook_sales - set(received))
    found["webhooks_repeated"] = sum(count - 1 for count in received.values())
    found["webhooks_for_unknown_sales"] = len(set(received) - webhook_sales)
    found["bad_signatures"] = receiver.bad_signatures
    return found


def verdicts(found: dict) -> dict[str, bool]:
    """What ``checks()`` found, as the distribution's promises, each kept or not."""
    return {
        "zero lost": found["lost"] == 0 and found["accepted_not_distributed"] == 0,
        "zero double-sold": not (
            found["lead_sold_twice_to_a_buyer"]
            or found["person_sold_twice_to_a_buyer"]
            or found["duplicates_sold"]
            or found["test_leads_sold"]
        ),
        "no 5xx": found["server_errors"] == 0 and found["unexpected_status"] == 0,
        "caps never exceeded": found["caps_exceeded"] == 0 and found["capped_subscriptions"] > 0,
        "wallets never below their limit, equal to their ledger": not (
            found["wallets_below_credit_limit"] or found["wallets_not_equal_to_ledger"]
        ),
        "answers match the stored sales": found["answers_not_matching_the_sales"] == 0
        and found["duplicate_answers_wrong"] == 0,
        "equal-weight round robin spread ≤ 1": found["fair_round_robin_spread"] <= 1,
        "every webhook sale delivered once, signed": not (
            found["webhooks_missing"]
            or found["webhooks_repeated"]
            or found["webhooks_for_unknown_sales"]
            or found["bad_signatures"]
        ),
        # The load was real: caps and wallets turned buyers away.
        "caps and wallets bound": bool(
            found["subscriptions_at_cap"] and found["unsold_reasons"].get("insufficient_funds")
        ),
    }


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    os.environ["WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"] = "true"  # the buyer's receiver is on loopback
    config = Config()
    config.celery_concurrency = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "2"))  # as the Procfile runs it
    receiver = WebhookReceiver(sale_id_of)
    env, workdir, _capture, workspace, _results, began = prepare(config)
    leads_per_campaign = max(1, int(settings.requests * (1 - settings.duplicate_share) / 5))
    market = market_create(
        workspace.organization_id, leads_per_campaign=leads_per_campaign, fifty=settings.buyers, receiver=receiver
    )
    servers = Servers(config, env, workdir)
    results: dict = {
        "command": "make bench-distribution",
        "started_at": started_at,
        "settings": settings.__dict__ | {"requests": settings.requests},
        "machine": machine_info(config),
    }
    try:
        servers.start()
        log(
            f"Distribution: {settings.clients} clients × {settings.leads_per_client:,} leads "
            f"({settings.duplicate_share:.0%} duplicates) into {len(market.campaigns)} campaigns (logs in {workdir})"
        )
        before, clock = cpu.snapshot(servers.pgids()), time.perf_counter()
        posted, seconds = asyncio.run(
            post_all(servers.base_url, workspace.ingest_keys, settings, list(market.campaigns.values()))
        )
        results["load"] = {
            "requests": len(posted),
            "seconds": round(seconds, 1),
            "requests_per_s": round(len(posted) / seconds, 1),
            "p50_ms": round(loadgen.percentile([p.ms for p in posted], 50), 1),
            "p99_ms": round(loadgen.percentile([p.ms for p in posted], 99), 1),
            "cpu": cpu.usage(
                before, cpu.snapshot(servers.pgids()), seconds=time.perf_counter() - clock, requests=len(posted)
            ),
        }
        log(f"  {len(posted):,} requests in {seconds:.0f} s; waiting for deliveries")
        results["drain"] = drain(config.dsn, settings.drain_seconds)
        results["checks"] = checks(config.dsn, workspace.organization_id, market, posted, receiver)
        if not settings.skip_latency:
            log(
                f"Latency: {settings.latency_rate:.0f} leads/s, with and without a {settings.buyers}-buyer campaign, "
                f"{settings.latency_seconds:.0f} s each"
            )
            results["latency"] = latency_phase(servers, workspace.ingest_keys, settings, market.latency_campaign)
    finally:
        servers.stop()
        with contextlib.suppress(Exception):
            receiver.shutdown()
    found = results["checks"]
    met = verdicts(found)
    if "latency" in results:
        met[f"distribution adds ≤ 10 ms at p99 ({settings.buyers} buyers)"] = results["latency"]["p99_added_ms"] <= 10
    results["met"] = met
    results["duration_s"] = round(time.perf_counter() - began, 1)
    out = Path(__file__).resolve().parent / "distribution.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    for key in ("originals", "sales", "lost", "lead_sold_twice_to_a_buyer", "person_sold_twice_to_a_buyer"):
        print(f"{key:>32}: {found[key]}")
    for key in ("duplicates_sold", "test_leads_sold", "server_errors", "caps_exceeded", "fair_round_robin_sales"):
        print(f"{key:>32}: {found[key]}")
    print(
        f"{'webhook sales / missing / repeated':>32}: {found['webhook_sales']} / {found['webhooks_missing']} / {found['webhooks_repeated']}"
    )
    print(f"{'load':>32}: {results['load']['requests_per_s']} requests/s, p99 {results['load']['p99_ms']} ms")
    if "latency" in results:
        latency = results["latency"]
        print(
            f"{'p99 without / with distribution':>32}: {latency['without']['p99_ms']} / {latency['with']['p99_ms']} ms "
            f"(+{latency['p99_added_ms']} ms)"
        )
        print(
            f"{'CPU stolen by the host':>32}: {latency['without']['cpu_stolen_s']} / {latency['with']['cpu_stolen_s']} s"
        )
    for name, ok in met.items():
        print(f"{'yes' if ok else 'NO':>32}: {name}")
    log(f"Wrote {out}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
