"""What the requests ran: statement counts, no COUNT(*) or deep OFFSET, EXPLAIN ANALYZE of the main query, and the
cost of a generic plan (what server-side prepared statements would do to the search)."""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import psycopg

_COUNT = re.compile(r"\bCOUNT\s*\(", re.IGNORECASE)
_OFFSET = re.compile(r"\bOFFSET\s+(\d+)", re.IGNORECASE)
_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")
_PLANNING = re.compile(r"Planning Time: ([\d.]+) ms")


def capture_read(directory: str, label: str) -> list[dict]:
    path = Path(directory) / f"{label}.json"
    return json.loads(path.read_text()) if path.exists() else []


def statements_summary(statements: list[dict]) -> dict:
    offsets = [int(m) for s in statements for m in _OFFSET.findall(s["sql"])]
    return {
        "statements": len(statements),
        "count_star": any(_COUNT.search(s["sql"]) for s in statements),
        "max_offset": max(offsets, default=0),
        "sql_ms": round(sum(s["ms"] for s in statements), 2),
        "list": [{"ms": s["ms"], "sql": _short(s["sql"])} for s in statements],
    }


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main_query(statements: list[dict]) -> str | None:
    """The list query itself: the statement reading leads_lead with an ORDER BY."""
    for statement in statements:
        sql = statement["sql"]
        if sql.lstrip().upper().startswith("SELECT") and 'FROM "leads_lead"' in sql and "ORDER BY" in sql:
            return sql
    return None


def shipped_connection() -> psycopg.Connection:
    """A connection opened the way Django opens it with the shipped DATABASES (its OPTIONS included, e.g. a
    ``-c jit=off``), so EXPLAIN sees the same planner settings as the served requests."""
    from django.db import connections

    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    return psycopg.connect(**params, autocommit=True)


def prelude(statements: list[dict]) -> list[str]:
    """``SET LOCAL`` statements the request ran before its main query (they change the plan)."""
    return [s["sql"] for s in statements if s["sql"].lstrip().upper().startswith("SET LOCAL")]


def explain(sql: str, setup: list[str] | None = None) -> dict:
    with shipped_connection() as conn, conn.transaction():
        for statement in setup or []:
            conn.execute(statement)
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()
    plan = "\n".join(row[0] for row in rows)
    execution = _EXECUTION.search(plan)
    planning = _PLANNING.search(plan)
    return {
        "execution_ms": float(execution.group(1)) if execution else None,
        "planning_ms": float(planning.group(1)) if planning else None,
        "jit": "JIT:" in plan,
        "setup": setup or [],
        "plan": plan,
        "sql": sql,
    }


# A string literal as psycopg writes it: '…' or, when it holds a backslash, E'…'.
_LITERAL = re.compile(r"(?<!\w)E'(?:[^'\\]|''|\\.)*'|'(?:[^']|'')*'")


def parameterized(sql: str) -> tuple[str, list[str]]:
    """The WHERE clause's string literals as $1, $2 … (the values kept as SQL literals for EXECUTE)."""
    head, where_keyword, where = sql.partition(" WHERE ")
    values: list[str] = []

    def placeholder(match: re.Match) -> str:
        values.append(match.group(0))
        return f"${len(values)}"

    return head + where_keyword + _LITERAL.sub(placeholder, where), values


def generic_plan_check(searches: list[dict], repeat: int = 5) -> list[dict]:
    """Each served search query (as captured: same SQL, same SET LOCAL), timed three ways.

    Shipped settings bind client-side (values inlined: a custom plan every time: ``as_shipped_ms``). With
    ``OPTIONS={"server_side_binding": True}`` the query would be a prepared statement; PostgreSQL's default
    ``plan_cache_mode`` (``auto``) switches it to a generic plan after five executions when that looks no costlier
    (``prepared_auto_ms``, executions 7-11), and ``force_generic_plan`` shows what the generic plan costs.
    """
    results = []
    for search in searches:
        sql, setup = search["sql"], search["setup"]
        prepared, values = parameterized(sql)
        execute = f"EXECUTE bench_search({', '.join(values)})"
        row = {"kind": search["kind"], "term": search["term"]}
        with shipped_connection() as conn:
            conn.execute(f"PREPARE bench_search AS {prepared}")

            def timed(statement: str, settings: tuple[str, ...] = (), setup: list[str] = setup) -> float:
                times = []
                for _ in range(repeat):
                    with conn.transaction():
                        for setting in (*setup, *settings):
                            conn.execute(setting)
                        started = time.perf_counter()
                        conn.execute(statement).fetchall()
                        times.append((time.perf_counter() - started) * 1000)
                return round(statistics.median(times), 2)

            row["as_shipped_ms"] = timed(sql)
            timed(execute)  # five custom plans first: PostgreSQL decides on the sixth
            row["prepared_auto_ms"] = timed(execute)
            generic = ("SET LOCAL plan_cache_mode = force_generic_plan",)
            row["forced_generic_ms"] = timed(execute, generic)
            with conn.transaction():
                for setting in (*setup, *generic):
                    conn.execute(setting)
                plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {execute}").fetchall()
            row["generic_plan"] = "\n".join(r[0] for r in plan)
        row["generic_slowdown"] = round(row["forced_generic_ms"] / row["as_shipped_ms"], 1)
        results.append(row)
    return results
