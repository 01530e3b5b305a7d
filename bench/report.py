"""The results table (console and bench/RESULTS.md) and bench/results.json."""

from __future__ import annotations

import json
import math
from pathlib import Path


def _ms(summary: dict) -> str:
    return f"{summary['p50_ms']:.1f} / {summary['p95_ms']:.1f} / {summary['p99_ms']:.1f} ms"


def _sql(summary: dict) -> str:
    sql = summary.get("sql_per_request") or {}
    if not sql:
        return "–"
    return str(sql["median"]) if sql["min"] == sql["max"] else f"{sql['min']}–{sql['max']}"


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**NO**")


def targets(results: dict) -> list[dict]:
    rows = []
    n = f"{results['config']['leads']:,}"
    reads = results.get("reads", {})
    for key, name, limit in (
        ("newest", "(a) newest first, page_size=50", 25),
        ("filtered", "(b) filtered: stage / source / owner / tag / score_min", 25),
        ("deep", "(c) cursor pages 2–20 (following `next`)", 25),
        ("search", "(d) search `q=` (names, email, phone, company)", 50),
    ):
        if key in reads:
            summary = reads[key]
            ok = summary["p95_ms"] <= limit and summary["errors"] == 0
            rows.append(
                {
                    "measurement": f"{name} at {n} leads, p50 / p95 / p99",
                    "result": _ms(summary) + f" ({summary.get('requests_per_s', '?')} req/s)",
                    "sql": _sql(summary),
                    "target": f"p95 ≤ {limit} ms",
                    "met": ok,
                }
            )
    sql = results.get("sql")
    if sql and "error" not in sql:
        rows.append(
            {
                "measurement": "reads: COUNT(*) or OFFSET in any captured list query",
                "result": f"COUNT: {'yes' if sql['count_star_in_any_read'] else 'none'}; "
                f"largest OFFSET: {sql['max_offset_in_any_read']}",
                "sql": "–",
                "target": "no COUNT, no deep OFFSET",
                "met": not sql["count_star_in_any_read"] and sql["max_offset_in_any_read"] <= 50,
            }
        )
    empty, full = results.get("ingest_empty"), results.get("ingest_full")
    for label, phase in (("empty table", empty), (f"{n} leads", full)):
        if not phase:
            continue
        ingest, minimal, half = phase["ingest"], phase["minimal"], phase["half_rate"]
        rows.append(
            {
                "measurement": f"ingest accepted/s at saturation, {label}",
                "result": f"{ingest['accepted_per_s']:.0f}/s (concurrency {ingest['at_concurrency']})",
                "sql": _sql(_level(ingest)),
                "target": "≥ 300/s",
                "met": ingest["accepted_per_s"] >= 300,
            }
        )
        rows.append(
            {
                "measurement": f"minimal DRF create, {label}",
                "result": f"{minimal['accepted_per_s']:.0f}/s (concurrency {minimal['at_concurrency']}); "
                f"ingest ÷ minimal = {phase['ratio_to_minimal']:.2f}",
                "sql": _sql(_level(minimal)),
                "target": "ratio ≥ 0.3",
                "met": phase["ratio_to_minimal"] >= 0.3,
            }
        )
        rows.append(
            {
                "measurement": f"ingest at half rate ({half['rate_per_s']:.0f}/s, open loop), {label}, p50 / p95 / p99",
                "result": _ms(half) + (f", {half['errors']} errors" if half["errors"] else ""),
                "sql": _sql(half),
                "target": "p99 ≤ 50 ms",
                "met": half["p99_ms"] <= 50 and half["errors"] == 0,
            }
        )
    if empty and full:
        change = full["ingest"]["accepted_per_s"] / empty["ingest"]["accepted_per_s"] - 1
        rows.append(
            {
                "measurement": f"ingest throughput at {n} leads vs empty",
                "result": f"{change:+.1%}" + (" (faster at that size)" if change > 0 else ""),
                "sql": "–",
                "target": "within 10 % (no more than 10 % slower)",
                "met": change >= -0.10,
            }
        )
    return rows


def _level(saturation: dict) -> dict:
    return next(lv for lv in saturation["levels"] if lv["concurrency"] == saturation["at_concurrency"])


def seed_line(results: dict) -> str:
    seed = results.get("seed")
    if not seed:
        return ""
    return (
        f"Seed: {seed['rows']:,} leads ({seed['duplicates']:,} duplicates) in {seed['total_s']:.1f} s = "
        f"{seed['rows_per_s_total']:,} rows/s overall (COPY {seed['copy_s']:.1f} s = {seed['rows_per_s_copy']:,} rows/s; "
        f"indexes {seed['indexes_s']:.1f} s; foreign keys {seed['foreign_keys_s']:.1f} s; VACUUM ANALYZE "
        f"{seed['vacuum_analyze_s']:.1f} s). Table {seed['table_size']}, indexes {seed['indexes_size']}."
    )


def table(results: dict) -> str:
    rows = targets(results)
    header = ["measurement", "result", "SQL/req", "target", "met"]
    body = [[r["measurement"], r["result"], r["sql"], r["target"], _met(r["met"]).strip("*")] for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = [seed_line(results), ""]
    for line in [header, ["-" * w for w in widths], *body]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
    return "\n".join(lines)


def markdown(results: dict) -> str:
    machine, config = results["machine"], results["config"]
    out = [
        "# LeadFlow benchmark results",
        "",
        f"`{results['command']}` — started {results['started_at']}, took {results['duration_s'] / 60:.1f} min. "
        "Generated by `bench/run.py`; every figure below was measured in that run.",
        "",
        f"**Code:** {results['code']['commit']} ({results['code']['subject']})"
        + (f"; uncommitted: {', '.join(results['code']['uncommitted'])}" if results["code"]["uncommitted"] else "")
        + (
            f". **Application code changed during the run** (now {results['code_at_end']['commit']}: "
            f"{', '.join(results['code_at_end']['app_changed'])})."
            if (results.get("code_at_end") or {}).get("app_changed")
            else "."
        ),
        "",
        f"**Machine:** {machine['cpu']}, {machine['cores']} cores, {machine['memory']} RAM; {machine['os']}. "
        f"PostgreSQL {machine['postgresql']} "
        f"({', '.join(f'{k}={v}' for k, v in machine['postgresql_settings'].items())}), Python {machine['python']}, "
        f"Django {machine['django']}, psycopg {machine['psycopg']}, gunicorn {machine['gunicorn']}. "
        f"{machine['note']}.",
        "",
        f"**Served:** gunicorn {config['gunicorn']}, `leadflow.settings.bench` (production settings, DEBUG "
        f"{config['debug']}, no TLS redirect); database OPTIONS as shipped: "
        f"`{json.dumps(config['database_options_as_shipped']['OPTIONS'])}` (psycopg client-side binding, no "
        f"prepared statements), CONN_MAX_AGE {config['database_options_as_shipped']['CONN_MAX_AGE']}. "
        f"Celery: {config['celery']}. Keys: {config['api_keys']}. Reads: closed loop, "
        f"{config['read_concurrency']} requests in flight, {config['seconds_per_measurement']:.0f} s per kind "
        f"(search and deep pages 1.5×) after a warm-up.",
        "",
        seed_line(results),
        "",
        "| measurement | result | SQL/request | target | met |",
        "|---|---|---|---|---|",
    ]
    for row in targets(results):
        out.append(f"| {row['measurement']} | {row['result']} | {row['sql']} | {row['target']} | {_met(row['met'])} |")
    reads = results.get("reads", {})
    for key, title in (
        ("filtered", "Filtered lists by filter"),
        ("search", "Search by kind of term"),
        ("deep", "Deep pages by starting list"),
    ):
        groups = reads.get(key, {}).get("by_kind") or reads.get(key, {}).get("by_start")
        if groups:
            out += ["", f"### {title}", "", "| kind | requests | p50 / p95 / p99 | SQL/request |", "|---|---|---|---|"]
            for name, summary in groups.items():
                out.append(f"| {name} | {summary['requests']} | {_ms(summary)} | {_sql(summary)} |")
    sql = results.get("sql")
    if sql and "error" in sql:
        out += ["", f"SQL checks failed: `{sql['error']}` (traceback in results.json)."]
    elif sql:
        out += ["", "### SQL per request (one captured request of each kind)", ""]
        out += [
            "| request | statements | SQL time | main query: planning + execution (EXPLAIN ANALYZE) | plan | without DISTINCT |",
            "|---|---|---|---|---|---|",
        ]
        for label, entry in sql["requests"].items():
            explained = entry.get("explain")
            execution = (
                f"{explained['planning_ms']:.1f} + {explained['execution_ms']:.1f} ms"
                + (" (JIT)" if explained["jit"] else "")
                if explained
                else "–"
            )
            plan = _plan_headline(explained["plan"]) if explained else "–"
            plain = entry.get("explain_without_distinct")
            without = f"{plain['execution_ms']:.1f} ms: {_plan_headline(plain['plan'])}" if plain else "–"
            out.append(
                f"| {label} | {entry['statements']} | {entry['sql_ms']:.1f} ms | {execution} | {plan} | {without} |"
            )
        out += ["", "Statements of one ingest request:", ""]
        for n, statement in enumerate(sql["requests"]["ingest"]["list"], 1):
            out.append(f"{n}. {statement['ms']:.2f} ms — `{statement['sql']}`")
        generic = sql.get("generic_plan")
        if generic:
            out += [
                "",
                "### Generic plans (what server-side prepared statements would do)",
                "",
                "| term | as shipped (client-side binding) | prepared, plan_cache_mode=auto | forced generic plan | slowdown |",
                "|---|---|---|---|---|",
            ]
            for row in generic:
                out.append(
                    f"| {row['kind']}: `{row['term']}` | {row['as_shipped_ms']:.1f} ms | {row['prepared_auto_ms']:.1f} ms | "
                    f"{row['forced_generic_ms']:.1f} ms | {row['generic_slowdown']}× |"
                )
    cpu_rows = _cpu_rows(results)
    if cpu_rows:
        names = ["gunicorn", "postgres", "celery worker", "redis", "load generator", "total"]
        out += [
            "",
            "### CPU per request by process (ms; 2 cores = 2000 ms of CPU per second)",
            "",
            "| measurement | cores busy | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for label, used in cpu_rows:
            per = used["cpu_ms_per_request"]
            out.append(
                f"| {label} | {used['cores_busy']} | " + " | ".join(f"{per.get(name, 0):.2f}" for name in names) + " |"
            )
    profile = results.get("profile")
    if profile and "error" in profile:
        out += ["", f"Ingest profile failed: `{profile['error']}` (traceback in results.json)."]
    elif profile:
        out += [
            "",
            "### Where an ingest request's time goes (in-process, cProfile on)",
            "",
            f"{profile['requests']} requests: {profile['wall_ms_per_request']:.1f} ms each under the profiler "
            f"({profile['unprofiled_ingest']['wall_ms_per_request']:.1f} ms without it; the minimal endpoint "
            f"{profile['unprofiled_minimal']['wall_ms_per_request']:.1f} ms), "
            f"{profile['sql_statements_per_request']:.1f} SQL statements taking {profile['sql_ms_per_request']:.1f} ms, "
            f"{profile['commits_per_request']:.1f} explicit commits taking {profile['commit_ms_per_request']:.1f} ms.",
            "",
            "| step | ms per request |",
            "|---|---|",
        ]
        for step in profile["steps"]:
            out.append(
                f"| {step['step'].replace(' ', '&nbsp;', len(step['step']) - len(step['step'].lstrip()))} | {step['ms_per_request']:.2f} |"
            )
    return "\n".join(out) + "\n"


def _cpu_rows(results: dict) -> list[tuple[str, dict]]:
    rows = []
    for key, summary in results.get("reads", {}).items():
        if "cpu" in summary:
            rows.append((f"read: {key}", summary["cpu"]))
    for phase_key, phase_label in (("ingest_empty", "empty"), ("ingest_full", "full")):
        phase = results.get(phase_key)
        if not phase:
            continue
        for kind in ("ingest", "minimal"):
            level = _level(phase[kind])
            rows.append((f"{kind} at saturation (c={level['concurrency']}), {phase_label}", level["cpu"]))
        rows.append((f"ingest at half rate, {phase_label}", phase["half_rate"]["cpu"]))
        if phase.get("without_worker"):
            rows.append(
                (f"ingest at saturation, worker stopped, {phase_label}", phase["without_worker"]["saturation"]["cpu"])
            )
    return rows


def _plan_headline(plan: str) -> str:
    nodes = []
    for line in plan.splitlines():
        text = line.strip().lstrip("->").strip()
        if not text or text.startswith(("Planning", "Execution", "Buffers", "Sort Key", "Filter", "Rows Removed")):
            continue
        if "(cost=" in text:
            name = text.split("  (cost=")[0]
            if name.split(" on ")[0] in ("Nested Loop", "Hash", "Memoize", "Hash Join"):
                continue
            nodes.append(name.replace(" using ", " ").replace(" Scan", ""))
        if len(nodes) >= 4:
            break
    return " → ".join(nodes).replace("|", "/")


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write(results: dict, *, json_path: Path, markdown_path: Path) -> None:
    results["targets"] = [{**row, "met": row["met"]} for row in targets(results)]
    json_path.write_text(json.dumps(_clean(results), indent=1, default=str) + "\n")
    markdown_path.write_text(markdown(results))
