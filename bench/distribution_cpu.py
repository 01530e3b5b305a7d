"""`make bench-distribution-cpu`: what one distribution into a 50-buyer campaign costs, in CPU and SQL statements.

Wall-clock p99 on a shared two-core machine says more about the neighbours than about the code; CPU time and
statement counts do not. In-process (no HTTP, no gunicorn), on a fresh `*_bench` database made as `make bench`
makes it (BENCH_DATABASE_URL, BENCH_REDIS_URL; the bench settings, the database OPTIONS as shipped), it calls
`lead_distribute` for DIST_CPU_LEADS (400) new leads in each campaign shape below, after DIST_CPU_WARMUP (20), and
reports per distribution:

* **python CPU ms**: this process's CPU time (`time.process_time`), i.e. Django, the engine and psycopg;
* **postgres CPU ms**: the CPU time of this connection's PostgreSQL backend (from /proc: the server is local);
* **statements**: SQL statements sent through Django (BEGIN and COMMIT are two more round trips);
* **wall p50 / p99 ms**, for orientation only.

Shapes (DIST_BUYERS, 50, funded buyers each): round robin uncapped (what `make bench-distribution` measures),
round robin with a daily cap on every subscription, waterfall with a daily cap, weighted with a daily cap, and
broadcast to DIST_CPU_BROADCAST_BUYERS (5). DIST_CPU_PROFILE=1 runs the first shape under cProfile (its CPU figures
then include the profiler's overhead) and prints where the time goes.

Then the same figures for whole ingest requests (`POST /api/v1/leads/ingest/` through `django.test.Client`: the
API key, the throttle, the intake, the submission's record, the distribution and the response), alternating one
without a campaign and one into the uncapped 50-buyer round robin, DIST_CPU_INGESTS (300) each: the difference is
what distribution adds to an ingest, in CPU. Writes bench/distribution_cpu.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

from .loadgen import percentile
from .run import Config, log, prepare

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def market(organization, *, logic: str, buyers: int, cap: dict, name: str):
    """Through the services, as `bench/distribution.py` builds its campaigns."""
    from campaigns.models import Buyer, BuyerSubscription, Campaign, Category
    from campaigns.services.catalog import buyer_save, campaign_save, category_save, subscription_save
    from campaigns.services.wallets import wallet_credit

    category = Category.objects.unscoped().filter(organization=organization).first() or category_save(
        category=Category(organization=organization),
        # As bench/distribution.py's: a required custom field, so an ingest into it validates its schema.
        data={
            "name": "Home loans",
            "slug": "home-loans",
            "fields": [{"name": "budget", "label": "Budget", "type": "number", "required": True}],
        },
    )
    campaign = campaign_save(
        campaign=Campaign(organization=organization),
        data={"category": category, "name": name, "price_per_lead": Decimal("1.00"), "distribution_logic": logic},
    )
    for n in range(buyers):
        buyer = buyer_save(
            buyer=Buyer(organization=organization), data={"name": f"{name} {n + 1}", "timezone": "Etc/UTC"}
        )
        wallet_credit(buyer=buyer, amount=Decimal(10**7), note="Bench funds")
        subscription_save(
            subscription=BuyerSubscription(organization=organization),
            data={"buyer": buyer, "campaign": campaign, "priority": n, **cap},
        )
    return campaign


def leads_create(organization, count: int, offset: int):
    from leads.models import Lead
    from leads.services.stages import stages_ensure_default

    stage = stages_ensure_default(organization=organization)[0]
    rows = [
        Lead(
            organization=organization,
            stage=stage,
            source="api",
            first_name="Cpu",
            last_name=f"Lead {offset + n}",
            email=f"cpu{offset + n}@example.com",
            phone=f"+1415{offset + n:07d}",
            state="CA",
        )
        for n in range(count)
    ]
    Lead.objects.unscoped().bulk_create(rows)
    return list(Lead.objects.unscoped().filter(organization=organization, email__in=[r.email for r in rows]))


def profiled(function, *args, top: int = 30):
    """``function(*args)`` under cProfile; returns its result and the top functions by cumulative time."""
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile()
    result = profile.runcall(function, *args)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
    return result, out.getvalue()


def measure(organization, campaign, leads: list, warmup: int) -> dict:
    from django.db import connection

    from campaigns.services.distribution import lead_distribute

    statements = [0]

    def count(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    for lead in leads[:warmup]:
        lead_distribute(lead=lead, campaign=campaign)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    measured = leads[warmup:]
    walls, sold = [], 0
    with connection.execute_wrapper(count):
        cpu_before, pg_before = time.process_time(), backend_cpu_seconds(backend)
        for lead in measured:
            started = time.perf_counter()
            outcome = lead_distribute(lead=lead, campaign=campaign)
            walls.append((time.perf_counter() - started) * 1000)
            sold += outcome.sold
        cpu, pg = time.process_time() - cpu_before, backend_cpu_seconds(backend) - pg_before
    n = len(measured)
    return {
        "distributions": n,
        "sold": sold,
        "python_cpu_ms": round(cpu * 1000 / n, 3),
        "postgres_cpu_ms": round(pg * 1000 / n, 3),
        "statements": round(statements[0] / n, 2),
        "wall_p50_ms": round(statistics.median(walls), 2),
        "wall_p99_ms": round(percentile(walls, 99), 2),
    }


def measure_ingest(campaign, keys: list[str], count: int, warmup: int) -> dict:
    """Ingest requests alternating without and with ``campaign``; per arm: CPU, statements, wall."""
    from django.db import connection
    from django.test import Client

    from .data import ingest_payload

    client = Client()
    statements = [0]

    def count_statements(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    def post(n: int, arm: str):
        body = ingest_payload(n, run=4 if arm == "with" else 5)
        if arm == "with":
            body["campaign"] = campaign.pk
        response = client.post(
            "/api/v1/leads/ingest/",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_X_API_KEY=keys[n % len(keys)],
        )
        if response.status_code != 201:
            raise SystemExit(f"ingest answered {response.status_code}: {response.content[:300]!r}")
        return response.json()

    for n in range(warmup):
        post(n, "without")
        post(n, "with")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    arms = {
        arm: {"python": 0.0, "postgres": 0.0, "statements": 0, "walls": [], "sold": 0} for arm in ("without", "with")
    }
    with connection.execute_wrapper(count_statements):
        for n in range(warmup, warmup + count):
            for arm in ("without", "with"):
                before = (time.process_time(), backend_cpu_seconds(backend), statements[0], time.perf_counter())
                body = post(n, arm)
                after = (time.process_time(), backend_cpu_seconds(backend), statements[0], time.perf_counter())
                figures = arms[arm]
                figures["python"] += after[0] - before[0]
                figures["postgres"] += after[1] - before[1]
                figures["statements"] += after[2] - before[2]
                figures["walls"].append((after[3] - before[3]) * 1000)
                figures["sold"] += (body.get("distribution") or {}).get("status") == "sold"
    summary = {}
    for arm, figures in arms.items():
        summary[arm] = {
            "requests": count,
            "sold": figures["sold"],
            "python_cpu_ms": round(figures["python"] * 1000 / count, 3),
            "postgres_cpu_ms": round(figures["postgres"] * 1000 / count, 3),
            "statements": round(figures["statements"] / count, 2),
            "wall_p50_ms": round(statistics.median(figures["walls"]), 2),
            "wall_p99_ms": round(percentile(figures["walls"], 99), 2),
        }
    summary["added"] = {
        key: round(summary["with"][key] - summary["without"][key], 3)
        for key in ("python_cpu_ms", "postgres_cpu_ms", "statements", "wall_p50_ms", "wall_p99_ms")
    }
    return summary


def main() -> int:
    config = Config()
    leads_per_shape = int(os.environ.get("DIST_CPU_LEADS", "400"))
    warmup = int(os.environ.get("DIST_CPU_WARMUP", "20"))
    buyers = int(os.environ.get("DIST_BUYERS", "50"))
    broadcast_buyers = int(os.environ.get("DIST_CPU_BROADCAST_BUYERS", "5"))
    profile = os.environ.get("DIST_CPU_PROFILE", "") == "1"
    _env, _workdir, _capture, workspace, _results, began = prepare(config)

    from django.db import connection

    from accounts.models import Organization

    organization = Organization.objects.get(pk=workspace.organization_id)
    # Caps that never bind in a run (every lead is sellable) but are counted on every distribution.
    daily = {"daily_cap": 10**6}
    shapes = [
        ("round robin, uncapped", "round_robin", buyers, {}),
        ("round robin, daily caps", "round_robin", buyers, daily),
        ("waterfall, daily caps", "waterfall", buyers, daily),
        ("weighted, daily caps", "weighted", buyers, daily),
        ("broadcast, daily caps", "broadcast", broadcast_buyers, daily),
    ]
    results: dict = {
        "command": "make bench-distribution-cpu",
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_at_start": os.getloadavg(),
        "settings": {"leads_per_shape": leads_per_shape, "warmup": warmup, "buyers": buyers},
        "shapes": {},
    }
    log(f"Distribution CPU: {leads_per_shape} leads per shape after {warmup} warm-up, {buyers} buyers")
    for index, (name, logic, count, cap) in enumerate(shapes):
        campaign = market(organization, logic=logic, buyers=count, cap=cap, name=name)
        leads = leads_create(organization, warmup + leads_per_shape, offset=index * 100_000)
        connection.close()  # a fresh backend per shape: its CPU counter starts clean
        if profile and index == 0:
            figures, report = profiled(measure, organization, campaign, leads, warmup)
            results["profile"] = report
        else:
            figures = measure(organization, campaign, leads, warmup)
        results["shapes"][name] = {"buyers": count, **figures}
        log(
            f"  {name:<26} python {figures['python_cpu_ms']:6.2f} ms  postgres {figures['postgres_cpu_ms']:6.2f} ms  "
            f"{figures['statements']:5.2f} statements  wall p50 {figures['wall_p50_ms']:6.2f} / p99 "
            f"{figures['wall_p99_ms']:6.2f} ms  ({figures['sold']}/{figures['distributions']} sold)"
        )
    ingests = int(os.environ.get("DIST_CPU_INGESTS", "300"))
    ingest_campaign = market(organization, logic="round_robin", buyers=buyers, cap={}, name="Ingest round robin")
    connection.close()
    results["ingest"] = measure_ingest(ingest_campaign, workspace.ingest_keys, ingests, warmup)
    for arm in ("without", "with", "added"):
        figures = results["ingest"][arm]
        log(
            f"  ingest {arm:<19} python {figures['python_cpu_ms']:6.2f} ms  postgres {figures['postgres_cpu_ms']:6.2f} ms"
            f"  {figures['statements']:5.2f} statements  wall p50 {figures['wall_p50_ms']:6.2f} / p99 "
            f"{figures['wall_p99_ms']:6.2f} ms"
        )
    results["load_average_at_end"] = os.getloadavg()
    if profile:
        log(results["profile"])
    results["duration_s"] = round(time.perf_counter() - began, 1)
    out = Path(__file__).resolve().parent / "distribution_cpu.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
