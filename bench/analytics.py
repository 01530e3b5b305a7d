"""`make bench-analytics`: every analytics report at a million leads, against the real database.

1. A fresh `*_bench` database (``bench.run.prepare``: migrate, the workspace through the services) and
   ``BENCH_LEADS`` (1,000,000) leads COPY-seeded over two years (``bench.seed``), then, in proportion, with SQL
   ``INSERT … SELECT`` over those leads: 6 campaigns with recorded ad spend, 20 buyers and 4 suppliers; a first
   routing for 40 % of the leads, a sale for 30 % (5 % of the sales returned and refunded), a supplier submission for
   20 %, and 1.5 messages a lead (one outbound with its delivery status and a reply for a quarter, one inbound for
   half).
2. The rollups built from scratch (``rollups_rebuild``, timed per cube), then an incremental refresh (the live
   windows plus 30 days marked stale).
3. Each report ``BENCH_ANALYTICS_RUNS`` (60) times, with varied date ranges (presets, and custom ranges of a day to
   two years anywhere in the data) and filters: the report's filter form and its selector in process, against the
   database, as the page and the API run them (``selector_ms``); and the API endpoint through Django's test
   client with an API key (``api_ms``: authentication, the form, the selector and the JSON).

Prints a table, writes bench/analytics.json, exits 1 when a report's p95 exceeds 100 ms.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from .loadgen import percentile
from .run import Config, log, machine_info, prepare

TARGET_P95_MS = 100.0
RUNS = int(os.environ.get("BENCH_ANALYTICS_RUNS", "60"))
WARMUP = 3
CAMPAIGNS = 6
BUYERS = 20
SUPPLIERS = 4


def _insert(conn, sql: str, params: dict, label: str) -> int:
    began = time.perf_counter()
    count = conn.execute(sql, params).rowcount
    log(f"  {label}: {count:,} rows in {time.perf_counter() - began:.1f} s")
    return count


def seed_business(dsn: str, organization_id: int) -> dict:
    """Campaigns, buyers and suppliers through the ORM; their routings, sales, returns, submissions and messages
    with SQL over the seeded leads."""
    from accounts.models import Organization
    from campaigns.models import Buyer, Campaign, Category, Supplier
    from leadflow.tenancy.context import organization_scope

    organization = Organization.objects.get(pk=organization_id)
    with organization_scope(organization):
        category = Category.objects.create(name="Real estate", slug="real-estate")
        campaigns = [
            Campaign.objects.create(
                category=category,
                name=f"Campaign {n + 1}",
                price_per_lead=Decimal(10 + 3 * n),
                ad_spend=Decimal(40_000 + 25_000 * n),
            )
            for n in range(CAMPAIGNS)
        ]
        buyers = [Buyer.objects.create(name=f"Buyer {n + 1}", timezone="Asia/Kolkata") for n in range(BUYERS)]
        suppliers = [
            Supplier.objects.create(name=f"Supplier {n + 1}", payout_per_lead=Decimal("4.00")) for n in range(SUPPLIERS)
        ]
    params = {
        "org": organization_id,
        "campaigns": [c.pk for c in campaigns],
        "prices": [c.price_per_lead for c in campaigns],
        "buyers": [b.pk for b in buyers],
        "suppliers": [s.pk for s in suppliers],
    }
    counts = {}
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        # Campaigns ran for the whole two years: their recorded spend is spread over them by the first refresh.
        conn.execute(
            "UPDATE campaigns_campaign SET created_at = now() - interval '730 days' WHERE organization_id = %(org)s",
            params,
        )
        counts["routings"] = _insert(
            conn,
            """
            INSERT INTO campaigns_leaddistribution
              (organization_id, lead_id, campaign_id, round, status, strategy, reasons, revenue, created_at)
            SELECT l.organization_id, l.id, (%(campaigns)s::bigint[])[1 + l.id %% 6], 1,
              CASE WHEN l.id %% 10 < 3 THEN 'sold' ELSE 'unsold' END, 'round_robin', '{}',
              CASE WHEN l.id %% 10 < 3 THEN (%(prices)s::numeric[])[1 + l.id %% 6] ELSE 0 END,
              l.received_at + interval '1 minute'
            FROM leads_lead l WHERE l.organization_id = %(org)s AND l.id %% 10 < 4
            """,
            params,
            "routings (40 % of leads)",
        )
        conn.execute("ANALYZE campaigns_leaddistribution")  # fresh rows: plan the joins below with statistics
        counts["sales"] = _insert(
            conn,
            """
            INSERT INTO campaigns_leadsale
              (organization_id, distribution_id, lead_id, campaign_id, buyer_id, price, created_at)
            SELECT d.organization_id, d.id, d.lead_id, d.campaign_id,
              (%(buyers)s::bigint[])[1 + (d.lead_id / 10) %% 20], d.revenue, d.created_at
            FROM campaigns_leaddistribution d WHERE d.organization_id = %(org)s AND d.status = 'sold'
            """,
            params,
            "sales (30 % of leads)",
        )
        counts["refunds"] = _insert(
            conn,
            """
            INSERT INTO campaigns_walletentry
              (organization_id, buyer_id, kind, amount, balance_after, lead_id, note, external_reference, created_at)
            SELECT s.organization_id, s.buyer_id, 'refund', s.price, 0, s.lead_id, 'bench-return ' || s.id, '',
              s.created_at + interval '1 day'
            FROM campaigns_leadsale s WHERE s.organization_id = %(org)s AND s.id %% 20 = 0
            """,
            params,
            "refunds",
        )
        conn.execute("ANALYZE campaigns_leadsale")
        conn.execute("ANALYZE campaigns_walletentry")
        counts["returns"] = _insert(
            conn,
            """
            INSERT INTO campaigns_leadreturn
              (organization_id, sale_id, buyer_id, campaign_id, lead_id, reason, note, status, requested_at,
               decided_at, decision_note, refund_entry_id, resell)
            SELECT s.organization_id, s.id, s.buyer_id, s.campaign_id, s.lead_id, 'wrong_number', '', 'approved',
              s.created_at + interval '12 hours', s.created_at + interval '1 day', '', w.id, false
            FROM campaigns_leadsale s JOIN campaigns_walletentry w ON w.note = 'bench-return ' || s.id
            WHERE s.organization_id = %(org)s AND w.organization_id = %(org)s
            """,
            params,
            "returns (5 % of sales)",
        )
        counts["submissions"] = _insert(
            conn,
            """
            INSERT INTO leads_inboundsubmission
              (organization_id, source, raw_body, content_type, headers, context, idempotency_key, body_sha256,
               received_at, status, attempts, processed_at, lead_id)
            SELECT l.organization_id, 'api', '', 'application/json', '{}', '{}', '', '', l.received_at,
              CASE WHEN l.duplicate_of_id IS NULL THEN 'accepted' ELSE 'duplicate' END, 1, l.received_at, l.id
            FROM leads_lead l WHERE l.organization_id = %(org)s AND l.id %% 5 = 0
            """,
            params,
            "supplier submissions (20 % of leads)",
        )
        conn.execute("ANALYZE leads_inboundsubmission")
        _insert(
            conn,
            """
            INSERT INTO campaigns_campaignsubmission
              (organization_id, submission_id, campaign_id, supplier_id, lead_id, outcome, is_test, payout,
               created_at, updated_at)
            SELECT i.organization_id, i.id, (%(campaigns)s::bigint[])[1 + i.lead_id %% 6],
              (%(suppliers)s::bigint[])[1 + (i.lead_id / 5) %% 4], i.lead_id, i.status, false,
              CASE WHEN i.status = 'accepted' THEN 4 ELSE 0 END, i.received_at, i.received_at
            FROM leads_inboundsubmission i WHERE i.organization_id = %(org)s
            """,
            params,
            "their campaign submissions",
        )
        message_columns = (
            "organization_id, lead_id, purpose, channel, direction, to_address, from_address, subject, body, media, "
            "template_variables, provider, provider_message_id, status, error_code, error_message, automated, "
            "attempts, created_at, replied_at"
        )
        counts["messages_out"] = _insert(
            conn,
            f"""
            INSERT INTO messaging_message ({message_columns})
            SELECT l.organization_id, l.id, 'conversation', (ARRAY['whatsapp', 'sms', 'email'])[1 + l.id %% 3], 'out',
              l.phone, '', '', 'Hello', '[]', '[]', '', '',
              CASE WHEN l.id %% 20 = 0 THEN 'failed' WHEN l.id %% 20 < 3 THEN 'sent' WHEN l.id %% 20 < 11
                THEN 'delivered' ELSE 'read' END, '', '', true, 1, l.received_at + interval '1 minute',
              CASE WHEN l.id %% 4 = 0 THEN l.received_at + interval '30 minutes' END
            FROM leads_lead l WHERE l.organization_id = %(org)s
            """,  # noqa: S608 - the column list is a constant
            params,
            "outbound messages (1 a lead)",
        )
        counts["messages_in"] = _insert(
            conn,
            f"""
            INSERT INTO messaging_message ({message_columns})
            SELECT l.organization_id, l.id, 'conversation', (ARRAY['whatsapp', 'sms', 'email'])[1 + l.id %% 3], 'in',
              '', l.phone, '', 'Yes please', '[]', '[]', '', '', 'received', '', '', false, 0,
              l.received_at + interval '30 minutes', NULL
            FROM leads_lead l WHERE l.organization_id = %(org)s AND l.id %% 2 = 0
            """,  # noqa: S608 - the column list is a constant
            params,
            "inbound messages (half the leads)",
        )
        t = time.perf_counter()
        for table in (
            "campaigns_leaddistribution",
            "campaigns_leadsale",
            "campaigns_walletentry",
            "campaigns_leadreturn",
            "leads_inboundsubmission",
            "campaigns_campaignsubmission",
            "messaging_message",
        ):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        log(f"  VACUUM ANALYZE: {time.perf_counter() - t:.1f} s")
    counts["seconds"] = round(time.perf_counter() - began, 1)
    return {"counts": counts, **params, "prices": [str(p) for p in params["prices"]]}


def build_rollups(organization_id: int, dsn: str) -> dict:
    from django.utils import timezone

    from accounts.models import Organization
    from analytics.models import RollupStaleDay
    from analytics.services import rollups_rebuild, rollups_refresh

    organization = Organization.objects.get(pk=organization_id)
    began = time.perf_counter()
    rebuilt = rollups_rebuild(organization=organization)
    rebuild_s = time.perf_counter() - began
    log(
        f"  rebuild: {rebuild_s:.1f} s ({', '.join(f'{k} {v / 1000:.1f} s' for k, v in rebuilt['ms_by_cube'].items())})"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("analytics_leaddayrollup", "analytics_leadmonthrollup", "analytics_saledayrollup"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        sizes = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - our own table names
            for table in (
                "analytics_leaddayrollup",
                "analytics_leadmonthrollup",
                "analytics_saledayrollup",
                "analytics_salemonthrollup",
                "analytics_submissiondayrollup",
                "analytics_messagedayrollup",
                "analytics_campaignspendday",
            )
        }
    shown = ", ".join(f"{table.removeprefix('analytics_')} {count:,}" for table, count in sizes.items())
    log(f"  rollup rows: {shown}")
    today = timezone.now().date()
    RollupStaleDay.objects.unscoped().bulk_create(
        [
            RollupStaleDay(organization_id=organization_id, cube=cube, day=today - timedelta(days=30 + 20 * n))
            for n in range(30)
            for cube in ("leads", "sales")
        ],
        ignore_conflicts=True,
    )
    began = time.perf_counter()
    refreshed = rollups_refresh(organization=organization)
    refresh_s = time.perf_counter() - began
    log(f"  incremental refresh (live windows + 30 stale days of leads and of sales): {refresh_s * 1000:.0f} ms")
    return {
        "rebuild_s": round(rebuild_s, 2),
        "rebuild_ms_by_cube": rebuilt["ms_by_cube"],
        "refresh_ms": round(refresh_s * 1000),
        "refresh_days": refreshed["days"],
        "rollup_rows": sizes,
    }


def report_params(name: str, spec, r: random.Random, today: date, business: dict, workspace) -> dict:
    """A varied request: a preset or a custom range anywhere in the two years, a valid granularity, a filter or
    two and a breakdown, as people pick them."""
    from analytics.filters import MAX_DAYS_FOR_GRANULARITY

    params: dict = {}
    if r.random() < 0.4:
        params["preset"] = r.choice(["7d", "30d", "90d", "this_month", "last_month", "this_year", "12m"])
        days = {"7d": 7, "30d": 30, "90d": 90, "this_month": 31, "last_month": 31, "this_year": 366, "12m": 366}[
            params["preset"]
        ]
    else:
        days = r.choice([1, 7, 30, 90, 180, 365, 730])
        start = today - timedelta(days=r.randint(days - 1, 729))
        params["date_from"], params["date_to"] = start.isoformat(), (start + timedelta(days=days - 1)).isoformat()
    if "granularity" in spec.filters:
        allowed = [g for g in ("day", "week", "month") if days <= MAX_DAYS_FOR_GRANULARITY.get(g, 10**6)]
        params["granularity"] = r.choice(allowed)
    if "group_by" in spec.filters and r.random() < 0.6:
        params["group_by"] = r.choice([value for value, _ in spec.group_by_choices if value])
    choices = {
        "source": ["facebook", "google_ads", "form", "api"],
        "campaign": business["campaigns"],
        "owner": [0, *workspace.owner_ids],
        "stage": workspace.stage_ids,
        "buyer": business["buyers"],
        "supplier": business["suppliers"],
        "channel": ["whatsapp", "sms", "email"],
    }
    filters = [f for f in spec.filters if f in choices]
    for name_ in r.sample(filters, k=min(len(filters), r.choice([0, 0, 1, 2]))):
        params[name_] = r.choice(choices[name_])
    return params


def time_reports(workspace, business: dict, organization_id: int) -> dict:
    from django.test import Client

    from accounts.models import Organization
    from analytics.filters import ReportFilterForm
    from analytics.reports import REPORTS
    from leadflow.tenancy.context import organization_scope

    organization = Organization.objects.get(pk=organization_id)
    today = time.localtime()
    today = date(today.tm_year, today.tm_mon, today.tm_mday)
    client = Client()
    key = workspace.read_keys[0]
    results = {}
    for name, spec in REPORTS.items():
        r = random.Random(f"analytics-{name}")  # noqa: S311 - reproducible request parameters, not secrets
        selector_ms, api_ms, failures = [], [], []
        for run in range(WARMUP + RUNS):
            params = report_params(name, spec, r, today, business, workspace)
            began = time.perf_counter()
            with organization_scope(organization):
                form = ReportFilterForm(params, report=spec, organization=organization)
                if not form.is_valid():
                    failures.append({"params": params, "errors": form.errors})
                    continue
                spec.selector(form.report_filters())
            elapsed = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            response = client.get(f"/api/v1/analytics/{name}/", params, HTTP_X_API_KEY=key)
            api_elapsed = (time.perf_counter() - began) * 1000
            if response.status_code != 200:
                failures.append({"params": params, "status": response.status_code, "body": response.content[:300]})
                continue
            if run >= WARMUP:
                selector_ms.append(elapsed)
                api_ms.append(api_elapsed)
        results[name] = {
            "runs": len(selector_ms),
            "failures": [str(f) for f in failures],
            **{f"selector_p{q}_ms": round(percentile(selector_ms, q), 1) for q in (50, 95, 99)},
            "selector_max_ms": round(max(selector_ms), 1) if selector_ms else None,
            **{f"api_p{q}_ms": round(percentile(api_ms, q), 1) for q in (50, 95, 99)},
        }
        row = results[name]
        log(
            f"  {name:<10} selector p50 {row['selector_p50_ms']:6.1f}  p95 {row['selector_p95_ms']:6.1f}  "
            f"p99 {row['selector_p99_ms']:6.1f} ms · API p95 {row['api_p95_ms']:6.1f} ms"
            + (f" · {len(failures)} failed" if failures else "")
        )
    return results


def table(results: dict) -> str:
    lines = [
        "| report | runs | selector p50 / p95 / p99 (ms) | API p50 / p95 / p99 (ms) | p95 ≤ 100 ms |",
        "|---|---|---|---|---|",
    ]
    for name, row in results["reports"].items():
        ok = row["selector_p95_ms"] <= TARGET_P95_MS and row["api_p95_ms"] <= TARGET_P95_MS and not row["failures"]
        lines.append(
            f"| {name} | {row['runs']} | {row['selector_p50_ms']} / {row['selector_p95_ms']} / {row['selector_p99_ms']} "
            f"| {row['api_p50_ms']} / {row['api_p95_ms']} / {row['api_p99_ms']} | {'yes' if ok else '**no**'} |"
        )
    return "\n".join(lines)


def main() -> int:
    config = Config()
    _env, _workdir, _capture, workspace, results, began = prepare(config)
    results["command"] = "make bench-analytics" + (
        f" (BENCH_LEADS={config.leads})" if config.leads != 1_000_000 else ""
    )
    results["config"] = {"leads": config.leads, "runs_per_report": RUNS, "warmup_runs": WARMUP}
    log(f"Seeding {config.leads:,} leads with COPY")
    from .seed import SeedPlan, now_utc, seed_leads

    with psycopg.connect(config.dsn, autocommit=True) as conn:
        start_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM leads_lead").fetchone()[0]
    plan = SeedPlan(
        workspace.organization_id, workspace.stage_ids, workspace.owner_ids, config.leads, start_id, now_utc()
    )
    results["seed"] = seed_leads(config.dsn, plan, log=log)
    log("Seeding campaigns, routings, sales, returns, submissions and messages")
    business = seed_business(config.dsn, workspace.organization_id)
    results["business"] = business["counts"]
    log("Building the rollups")
    results["rollups"] = build_rollups(workspace.organization_id, config.dsn)
    log(f"Timing every report, {RUNS} runs each with varied ranges and filters")
    results["reports"] = time_reports(workspace, business, workspace.organization_id)
    results["machine"] = machine_info(config)
    results["duration_s"] = round(time.perf_counter() - began, 1)
    over = [
        name
        for name, row in results["reports"].items()
        if row["failures"] or row["selector_p95_ms"] > TARGET_P95_MS or row["api_p95_ms"] > TARGET_P95_MS
    ]
    results["target"] = {"p95_ms": TARGET_P95_MS, "met": not over, "over": over}
    out = Path(__file__).resolve().parent / "analytics.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results), flush=True)
    log(f"Wrote {out} in {results['duration_s'] / 60:.1f} min")
    if over:
        log(f"Over {TARGET_P95_MS:.0f} ms at p95 (or failed): {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
