"""The system health page's live checks: database, Redis, Celery workers, queues, beat, and recent error rates.

Every figure is measured when the page is drawn (nothing is cached or made up); a check that cannot run says why
instead of failing the page. Each check returns a ``Check`` with a status the page colours: ``ok``, ``warning``
(look soon) or ``error`` (something is down).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from .heartbeats import BEAT_TICK_INTERVAL_S, beat_last_tick, worker_heartbeats

OK, WARNING, ERROR = "ok", "warning", "error"
DATABASE_SLOW_MS = 100
REDIS_SLOW_MS = 50
QUEUE_LONG = 1000
PING_TIMEOUT_S = 1.0
# Kombu's Redis transport keeps priorities as separate lists: "<queue>", "<queue>\x06\x163", …
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass
class Check:
    name: str
    status: str
    summary: str
    details: list[tuple[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _worst(*statuses: str) -> str:
    return ERROR if ERROR in statuses else WARNING if WARNING in statuses else OK


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


# Database ---------------------------------------------------------------------------------------------------------


def _database_alias(alias: str) -> dict[str, Any]:
    connection = connections[alias]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
        latency = _ms(started)
        cursor.execute(
            "SELECT current_setting('server_version'), pg_database_size(current_database()), "
            "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()), pg_is_in_recovery(), "
            "CASE WHEN pg_is_in_recovery() THEN EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        version, size, backends, in_recovery, lag = cursor.fetchone()
    return {
        "alias": alias,
        "latency_ms": latency,
        "version": version,
        "size_mb": round(size / 1024 / 1024, 1),
        "connections": backends,
        "replica": in_recovery,
        "replication_lag_s": round(float(lag), 1) if lag is not None else None,
    }


def database_check() -> Check:
    rows, statuses = [], []
    for alias in settings.DATABASES:
        try:
            row = _database_alias(alias)
        except Exception as error:
            rows.append({"alias": alias, "error": f"{type(error).__name__}: {error}"[:300]})
            statuses.append(ERROR)
            continue
        rows.append(row)
        statuses.append(WARNING if row["latency_ms"] > DATABASE_SLOW_MS else OK)
    default = next((row for row in rows if row["alias"] == "default"), {})
    summary = (
        f"{default['latency_ms']} ms round trip, PostgreSQL {default['version']}"
        if "latency_ms" in default
        else default.get("error", "no default database")
    )
    return Check("Database", _worst(*statuses), summary, rows=rows)


# Redis ------------------------------------------------------------------------------------------------------------


def redis_check() -> Check:
    from leadflow.redis import redis_client

    client = redis_client()
    if client is None:
        return Check("Redis", WARNING, "Not configured: cache and channel layer are in-process, tasks run eagerly")
    try:
        started = time.perf_counter()
        client.ping()
        latency = _ms(started)
        memory, server, clients = client.info("memory"), client.info("server"), client.info("clients")
    except Exception as error:
        return Check("Redis", ERROR, f"Unreachable: {type(error).__name__}: {error}"[:300])
    maxmemory = memory.get("maxmemory") or 0
    details = [
        ("Version", server.get("redis_version")),
        ("Memory used", memory.get("used_memory_human")),
        ("Memory peak", memory.get("used_memory_peak_human")),
        ("Memory limit", memory.get("maxmemory_human") if maxmemory else "none"),
        ("Eviction policy", memory.get("maxmemory_policy")),
        ("Connected clients", clients.get("connected_clients")),
        ("Up for", timedelta(seconds=int(server.get("uptime_in_seconds", 0)))),
    ]
    status = WARNING if latency > REDIS_SLOW_MS else OK
    if maxmemory and memory.get("used_memory", 0) > 0.9 * maxmemory:
        status = WARNING
    return Check("Redis", status, f"{latency} ms round trip, {memory.get('used_memory_human')} used", details=details)


# Celery -----------------------------------------------------------------------------------------------------------


def celery_queue_names() -> list[str]:
    """The queues tasks are sent to: the default one, declared ones and those routes name."""
    from leadflow.celery import app

    names = {app.conf.task_default_queue}
    names.update(queue.name for queue in (app.conf.task_queues or []))
    routes = app.conf.task_routes or {}
    if isinstance(routes, dict):
        names.update(route["queue"] for route in routes.values() if isinstance(route, dict) and route.get("queue"))
    return sorted(names)


def _broker_client():
    import redis

    from leadflow.celery import app

    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def broker_queue_lengths() -> dict[str, Any] | None:
    """``{"queues": {name: waiting}, "unacked": n}`` from the Redis broker (LLEN of each queue's priority lists);
    ``None`` when the broker is not Redis (eager tasks, another transport)."""
    client = _broker_client()
    if client is None:
        return None
    try:
        pipeline = client.pipeline(transaction=False)
        names = celery_queue_names()
        for name in names:
            for step in _PRIORITY_STEPS:
                pipeline.llen(name if step == 0 else f"{name}{_PRIORITY_SEPARATOR}{step}")
        pipeline.hlen("unacked")
        results = pipeline.execute()
    finally:
        client.close()
    lengths = {
        name: sum(results[index * len(_PRIORITY_STEPS) : (index + 1) * len(_PRIORITY_STEPS)])
        for index, name in enumerate(names)
    }
    return {"queues": lengths, "unacked": results[-1]}


def queues_check() -> Check:
    try:
        lengths = broker_queue_lengths()
    except Exception as error:
        return Check("Queues", ERROR, f"Broker unreachable: {type(error).__name__}: {error}"[:300])
    if lengths is None:
        return Check("Queues", WARNING, "The broker is not Redis: tasks run eagerly or elsewhere")
    waiting = sum(lengths["queues"].values())
    rows = [{"queue": name, "waiting": length} for name, length in lengths["queues"].items()]
    status = WARNING if any(row["waiting"] > QUEUE_LONG for row in rows) else OK
    return Check(
        "Queues",
        status,
        f"{waiting} task(s) waiting, {lengths['unacked']} taken by workers and not finished",
        details=[("Unacknowledged (running or reserved)", lengths["unacked"])],
        rows=rows,
    )


def _ping_workers() -> tuple[list[str] | None, str]:
    from leadflow.celery import app

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None, "tasks run eagerly: no workers to ping"
    try:
        replies = app.control.inspect(timeout=PING_TIMEOUT_S).ping() or {}
    except Exception as error:
        return None, f"ping failed: {type(error).__name__}: {error}"[:300]
    return sorted(replies), ""


def workers_check() -> Check:
    try:
        beats = worker_heartbeats()
    except Exception as error:
        return Check("Workers", ERROR, f"Heartbeats unreadable: {type(error).__name__}: {error}"[:300])
    answered, ping_note = _ping_workers()
    rows = []
    for beat in beats:
        rows.append(
            {
                "hostname": beat["hostname"],
                "alive": beat["alive"],
                "age_s": beat["age_s"],
                "pid": beat.get("pid"),
                "concurrency": beat.get("concurrency"),
                "queues": ", ".join(beat.get("queues") or []),
                "up_for": timedelta(seconds=int(time.time() - beat.get("started_at", time.time()))),
                "answered_ping": None if answered is None else beat["hostname"] in answered,
            }
        )
    # A worker that answers the ping but wrote no heartbeat (an older release, Redis hiccup) still counts as seen.
    for hostname in answered or []:
        if not any(row["hostname"] == hostname for row in rows):
            rows.append({"hostname": hostname, "alive": None, "answered_ping": True})
    alive = [row for row in rows if row["alive"] or row.get("answered_ping")]
    if settings.CELERY_TASK_ALWAYS_EAGER:
        status, summary = WARNING, "Tasks run eagerly inside the web process (no broker configured)"
    elif not alive:
        status, summary = ERROR, "No worker is alive: nothing is processing tasks"
    else:
        stale = [row for row in rows if row["alive"] is False]
        status = WARNING if stale else OK
        summary = f"{len(alive)} alive" + (f", {len(stale)} silent" if stale else "")
    details = [("Ping", ping_note or f"{len(answered or [])} answered within {PING_TIMEOUT_S:g} s")]
    return Check("Workers", status, summary, details=details, rows=rows)


def beat_check() -> Check:
    from django.db.models import Count, Max
    from django_celery_beat.models import PeriodicTask

    details = []
    try:
        last_tick = beat_last_tick()
    except Exception as error:
        return Check("Beat", ERROR, f"Tick unreadable: {type(error).__name__}: {error}"[:300])
    enabled = PeriodicTask.objects.filter(enabled=True).aggregate(count=Count("id"), last=Max("last_run_at"))
    last_dispatch = enabled["last"]
    details.append(("Enabled periodic tasks", enabled["count"]))
    details.append(
        (
            "Last dispatch recorded by beat",
            f"{timezone.localtime(last_dispatch):%Y-%m-%d %H:%M:%S %Z} (beat saves this every few minutes)"
            if last_dispatch
            else "never",
        )
    )
    if last_tick is None:
        return Check("Beat", ERROR, "No tick recorded yet: is celery beat running?", details=details)
    age = time.time() - last_tick
    details.insert(0, ("Last tick run", f"{age:.0f} s ago"))
    status = OK if age <= 2 * BEAT_TICK_INTERVAL_S + 15 else WARNING if age <= 10 * BEAT_TICK_INTERVAL_S else ERROR
    summary = f"Last tick {age:.0f} s ago (every {BEAT_TICK_INTERVAL_S} s)"
    return Check("Beat", status, summary, details=details)


# Error rates ------------------------------------------------------------------------------------------------------


def _rate(failed: int, total: int) -> str:
    return f"{failed * 100 / total:.1f} %" if total else "–"


def error_rates(*, now=None) -> list[dict[str, Any]]:
    """Failures in the last hour and day, each with what it is out of, straight from the tables (and Redis)."""
    from django.db.models import Count, Q

    from billing.models import BillingEvent, BillingEventStatus
    from integrations.constants import ConversionEventStatus, WebhookDeliveryStatus
    from integrations.models import ConversionEvent, WebhookAttempt, WebhookDelivery
    from leads.constants import SubmissionStatus
    from leads.models import InboundSubmission

    from ..metrics import server_errors_since

    now = now or timezone.now()
    rows = []
    for label, seconds in (("Last hour", 3600), ("Last 24 hours", 86400)):
        since = now - timedelta(seconds=seconds)
        submissions = (
            InboundSubmission.objects.unscoped()
            .filter(received_at__gte=since)
            .aggregate(
                total=Count("id"),
                failed=Count("id", filter=Q(status=SubmissionStatus.FAILED)),
                rejected=Count("id", filter=Q(status=SubmissionStatus.REJECTED)),
            )
        )
        attempts = (
            WebhookAttempt.objects.unscoped()
            .filter(started_at__gte=since)
            .aggregate(total=Count("id"), failed=Count("id", filter=Q(succeeded=False)))
        )
        deliveries_failed = (
            WebhookDelivery.objects.unscoped()
            .filter(status=WebhookDeliveryStatus.FAILED, last_attempt_at__gte=since)
            .count()
        )
        billing = (
            BillingEvent.objects.unscoped()
            .filter(received_at__gte=since)
            .aggregate(total=Count("id"), failed=Count("id", filter=Q(status=BillingEventStatus.FAILED)))
        )
        conversions_failed = (
            ConversionEvent.objects.unscoped()
            .filter(status=ConversionEventStatus.FAILED, last_attempt_at__gte=since)
            .count()
        )
        server_errors = server_errors_since(seconds=seconds)
        rows.append(
            {
                "window": label,
                "submissions": submissions,
                "submissions_failed_rate": _rate(submissions["failed"], submissions["total"]),
                "attempts": attempts,
                "attempts_failed_rate": _rate(attempts["failed"], attempts["total"]),
                "deliveries_failed": deliveries_failed,
                "billing": billing,
                "conversions_failed": conversions_failed,
                "server_errors": server_errors,
            }
        )
    return rows


def errors_check(*, now=None) -> Check:
    rows = error_rates(now=now)
    last_hour = rows[0]
    problems = (
        last_hour["submissions"]["failed"]
        + last_hour["deliveries_failed"]
        + last_hour["billing"]["failed"]
        + (last_hour["server_errors"] or 0)
    )
    status = WARNING if problems else OK
    summary = (
        f"Last hour: {last_hour['submissions']['failed']} failed submission(s), {last_hour['attempts']['failed']} "
        f"failed webhook attempt(s), {last_hour['billing']['failed']} failed billing event(s), "
        f"{last_hour['server_errors'] if last_hour['server_errors'] is not None else '?'} server error(s)"
    )
    return Check("Errors", status, summary, rows=rows)


def system_health() -> dict[str, Any]:
    """Every check, in the page's order, with the overall status and how long the checks took."""
    started = time.perf_counter()
    checks = [database_check(), redis_check(), workers_check(), queues_check(), beat_check(), errors_check()]
    return {
        "checks": checks,
        "status": _worst(*(check.status for check in checks)),
        "checked_at": timezone.now(),
        "took_ms": _ms(started),
    }
