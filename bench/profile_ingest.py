"""Where an ingest request's time goes: the full Django stack in-process (django.test.Client, the bench settings,
the bench database, the real Redis broker), with each pipeline step timed and a cProfile of the whole."""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import time
from collections import defaultdict
from contextlib import ExitStack
from unittest import mock

# (what, where to patch): nested steps are indented under the step that calls them.
STEPS = [
    ("API key lookup (authentication; cached 10 s per process)", "accounts.authentication.api_key_authenticate"),
    ("per-key throttle (Redis INCR)", "leadflow.api.throttling.ApiKeyRateThrottle.allow_request"),
    (
        "submission_store: the raw submission, one prepared INSERT committing on its own",
        "leads.api.views.submission_store",
    ),
    ("submission_process (everything below)", "leads.api.views.submission_process"),
    ("  map_payload", "leads.intake.pipeline.map_payload"),
    ("  custom_field_schema", "leads.intake.pipeline.custom_field_schema"),
    ("  clean_lead_fields (normalize + validate)", "leads.intake.pipeline.clean_lead_fields"),
    ("  _create_or_match (everything below)", "leads.intake.pipeline._create_or_match"),
    ("    lead_rescore (rule score before the INSERT)", "leads.intake.pipeline.lead_rescore"),
    (
        "    _insert_unless_matched: lock, lookup, lead, timeline, outbox, outcome (one round trip, incl. commit)",
        "leads.intake.pipeline._insert_unless_matched",
    ),
    ("      after commit: wake the worker (Redis SET NX; a task per burst)", "leads.services.outbox._wake_up"),
]


def _timed(target: str, original, totals: dict):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[target] += time.perf_counter() - started

    return wrapper


def _resolve(target: str):
    """(owner, attribute) to patch, or None when the pipeline no longer has that step."""
    module_name, _, attribute = target.rpartition(".")
    try:
        owner = __import__(module_name, fromlist=[attribute])
    except ImportError:  # a class attribute: module.Class.method
        module_name, _, cls = module_name.rpartition(".")
        owner = getattr(__import__(module_name, fromlist=[cls]), cls, None)
    return (owner, attribute) if owner is not None and hasattr(owner, attribute) else None


def profile_ingest(*, key: str, payloads: list[dict], path: str = "/api/v1/leads/ingest/") -> dict:
    from django.db import connections
    from django.test import Client

    connection = connections["default"]
    client = Client()
    totals: dict[str, float] = defaultdict(float)
    sql = {"count": 0, "seconds": 0.0, "commits": 0, "commit_seconds": 0.0}

    def sql_timer(execute, statement, params, many, context):
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql["count"] += 1
            sql["seconds"] += time.perf_counter() - started

    def post(payload):
        return client.post(path, data=json.dumps(payload), content_type="application/json", HTTP_X_API_KEY=key)

    post(payloads[0])  # warm: imports, the first connection, the key's last_used_at write
    connection.ensure_connection()
    original_commit = connection._commit

    def timed_commit():
        started = time.perf_counter()
        try:
            return original_commit()
        finally:
            sql["commits"] += 1
            sql["commit_seconds"] += time.perf_counter() - started

    statuses: dict[int, int] = defaultdict(int)
    profiler = cProfile.Profile()
    with ExitStack() as stack:
        present = set()
        for _, target in STEPS:
            resolved = _resolve(target)
            if resolved is None:
                continue
            owner, attribute = resolved
            present.add(target)
            stack.enter_context(mock.patch.object(owner, attribute, _timed(target, getattr(owner, attribute), totals)))
        connection._commit = timed_commit  # an instance attribute over the method; removed below
        stack.callback(delattr, connection, "_commit")
        stack.enter_context(connection.execute_wrapper(sql_timer))
        started = time.perf_counter()
        profiler.enable()
        for payload in payloads[1:]:
            statuses[post(payload).status_code] += 1
        profiler.disable()
        wall = time.perf_counter() - started
    n = len(payloads) - 1
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(r"/(leads|accounts|leadflow)/", 30)
    cumulative = stream.getvalue()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(20)
    return {
        "requests": n,
        "statuses": dict(statuses),
        "wall_ms_per_request": round(wall / n * 1000, 2),
        "note": "in-process, profiled: cProfile roughly doubles Python time; compare the steps with each other",
        "sql_statements_per_request": round(sql["count"] / n, 2),
        "sql_ms_per_request": round(sql["seconds"] / n * 1000, 2),
        "commits_per_request": round(sql["commits"] / n, 2),
        "commit_ms_per_request": round(sql["commit_seconds"] / n * 1000, 2),
        "steps": [
            {"step": label, "ms_per_request": round(totals[target] / n * 1000, 3)}
            for label, target in STEPS
            if target in present
        ],
        "cprofile_cumulative": _trim(cumulative),
        "cprofile_tottime": _trim(stream.getvalue()),
    }


def time_requests(*, key: str, payloads: list[dict], path: str) -> dict:
    """Plain timing (no profiler): the in-process cost of a request, for ingest vs the minimal endpoint."""
    from django.db import connection
    from django.test import Client

    client = Client()
    count = {"n": 0}

    def counter(execute, statement, params, many, context):
        count["n"] += 1
        return execute(statement, params, many, context)

    client.post(path, data=json.dumps(payloads[0]), content_type="application/json", HTTP_X_API_KEY=key)
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        for payload in payloads[1:]:
            client.post(path, data=json.dumps(payload), content_type="application/json", HTTP_X_API_KEY=key)
        wall = time.perf_counter() - started
    n = len(payloads) - 1
    return {"requests": n, "wall_ms_per_request": round(wall / n * 1000, 2), "sql_per_request": count["n"] / n}


def _trim(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(lines[start:]).strip()
