"""`make bench`: recreate `leadflow_bench`, serve LeadFlow with gunicorn and a Celery worker, measure, report.

1. ingest on an (almost) empty table: saturation sweep, the minimal create endpoint, half-rate latency;
2. seed BENCH_LEADS leads (default 1,000,000) with COPY;
3. reads at that size: newest first, filtered, 20 cursor pages deep, search;
4. ingest again at that size;
5. SQL per request (captured from the served requests), EXPLAIN ANALYZE, the generic-plan check, an ingest profile.

Environment: BENCH_LEADS, BENCH_SECONDS (per measurement: 20, or 8 below a million leads), BENCH_READ_CONCURRENCY
(2), BENCH_INGEST_SWEEP (4,8,16), BENCH_WORKERS (gunicorn workers, 2), BENCH_THREADS (threads each, 4),
BENCH_CELERY_CONCURRENCY (1, see README), BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg

from . import cpu, loadgen, report
from .data import TAGS, ingest_payload, minimal_payload
from .loadgen import Request, summarize

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SOURCES = ["facebook", "google_ads", "form", "api", "csv", "linkedin", "manual", "webhook"]


@dataclass
class Config:
    leads: int = int(os.environ.get("BENCH_LEADS", "1000000"))
    # 20 s a measurement for the full run; a quick run (fewer leads) measures for 8 s.
    seconds: float = float(
        os.environ.get("BENCH_SECONDS", "20" if int(os.environ.get("BENCH_LEADS", "1000000")) >= 1_000_000 else "8")
    )
    read_concurrency: int = int(os.environ.get("BENCH_READ_CONCURRENCY", "2"))
    ingest_sweep: list[int] = field(
        default_factory=lambda: [int(c) for c in os.environ.get("BENCH_INGEST_SWEEP", "4,8,16").split(",")]
    )
    workers: int = int(os.environ.get("BENCH_WORKERS", "2"))
    threads: int = int(os.environ.get("BENCH_THREADS", "4"))
    celery_concurrency: int = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "1"))
    database_url: str = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadflow_bench")
    redis_url: str = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    port: int = int(os.environ.get("BENCH_PORT", "0"))
    read_keys: int = 16
    ingest_keys: int = 32

    @property
    def dsn(self) -> str:
        return self.database_url.replace("postgres://", "postgresql://", 1)

    @property
    def database_name(self) -> str:
        return urllib.parse.urlsplit(self.database_url).path.lstrip("/")

    @property
    def admin_dsn(self) -> str:
        parts = urllib.parse.urlsplit(self.dsn)
        return urllib.parse.urlunsplit(parts._replace(path="/postgres"))


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Processes ----------------------------------------------------------------------------------------------------------


class AutovacuumStandIn(threading.Thread):
    """What autovacuum would do for the bench database, on a server where it is off.

    Some machines run PostgreSQL with ``autovacuum = off`` (a CI setting). Then a table that fills during a run
    never gets statistics: the planner keeps its "empty table" guesses and, past a few thousand rows, picks plans
    no production server would (a sale-planning query scanned the whole leads index for every sale and took
    minutes). Every ``every`` seconds this runs ANALYZE on each table that changed past autovacuum's default
    threshold (50 rows + 10 % of the table) and VACUUM on each past its dead-row threshold (50 + 20 %), as
    autovacuum would. With autovacuum on, it is not started."""

    ANALYZE_SQL = (
        "SELECT schemaname, relname FROM pg_stat_user_tables "
        "WHERE n_mod_since_analyze > 50 + 0.1 * GREATEST(n_live_tup, 0)"
    )
    VACUUM_SQL = (
        "SELECT schemaname, relname FROM pg_stat_user_tables WHERE n_dead_tup > 50 + 0.2 * GREATEST(n_live_tup, 0)"
    )

    def __init__(self, dsn: str, *, every: float = 20.0):
        super().__init__(daemon=True, name="autovacuum stand-in")
        self.dsn, self.every = dsn, every
        self.analyzed = self.vacuumed = 0
        self.error = ""
        self._stopping = threading.Event()

    @staticmethod
    def needed(dsn: str) -> bool:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute("SHOW autovacuum").fetchone()[0] != "on"

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=60)

    def run(self) -> None:
        from .memory import BENCH_APPLICATION_NAME

        try:
            with psycopg.connect(self.dsn, autocommit=True, application_name=BENCH_APPLICATION_NAME) as conn:
                while not self._stopping.wait(self.every):
                    self.pass_once(conn)
        except Exception as error:  # reported; the run goes on as it would with autovacuum off
            self.error = f"{type(error).__name__}: {error}"

    def pass_once(self, conn: psycopg.Connection) -> None:
        """One round on an autocommit connection (VACUUM cannot run inside a transaction)."""
        from psycopg import sql

        for statement, query in (("VACUUM", self.VACUUM_SQL), ("ANALYZE", self.ANALYZE_SQL)):
            for schema, table in conn.execute(query).fetchall():
                conn.execute(sql.SQL(statement + " {}").format(sql.Identifier(schema, table)))
                if statement == "VACUUM":
                    self.vacuumed += 1
                else:
                    self.analyzed += 1


class Servers:
    """gunicorn and a Celery worker (and, when a benchmark needs them, daphne and celery beat), each in its own
    session so they (and only they) can be stopped together."""

    # What each process group is called in CPU and memory figures.
    LABELS = {"gunicorn": "gunicorn", "celery": "celery worker", "daphne": "daphne", "beat": "celery beat"}

    def __init__(self, config: Config, env: dict[str, str], logs: Path):
        self.config, self.env, self.logs = config, env, logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.autovacuum: AutovacuumStandIn | None = None
        self.base_url = f"http://127.0.0.1:{config.port}"

    def gunicorn_command(self) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            "bench.wsgi:application",
            "--worker-class",
            "gthread",
            "--workers",
            str(self.config.workers),
            "--threads",
            str(self.config.threads),
            "--bind",
            f"127.0.0.1:{self.config.port}",
            "--backlog",
            "2048",
            "--keep-alive",
            "75",
            "--log-level",
            "warning",
        ]

    def celery_command(self) -> list[str]:
        return [
            str(VENV_BIN / "celery"),
            "-A",
            "leadflow",
            "worker",
            "--loglevel",
            "warning",
            "--concurrency",
            str(self.config.celery_concurrency),
        ]

    def start(self) -> None:
        self._spawn("gunicorn", self.gunicorn_command())
        self.start_worker()
        self._wait_healthy(self.base_url, "gunicorn")
        if self.autovacuum is None and AutovacuumStandIn.needed(self.config.dsn):
            log("  autovacuum is off on this PostgreSQL server: the benchmark analyzes and vacuums in its place")
            self.autovacuum = AutovacuumStandIn(self.config.dsn)
            self.autovacuum.start()

    def _wait_healthy(self, base_url: str, name: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/healthz/", timeout=2).status_code == 200:
                    return
            for started, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{started} exited early; see {self.logs / (started + '.log')}")
            time.sleep(0.5)
        raise RuntimeError(f"{name} did not answer /healthz/ in 60 s; see {self.logs / (name + '.log')}")

    def pgids(self) -> dict[str, int]:
        return {self.LABELS[name]: p.pid for name, p in self.processes.items()}

    def start_daphne(self, port: int) -> None:
        """daphne, as `make run` and production serve LeadFlow's websockets (``leadflow.asgi``)."""
        self._spawn(
            "daphne", [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "leadflow.asgi:application"]
        )
        self._wait_healthy(f"http://127.0.0.1:{port}", "daphne")

    def start_beat(self) -> None:
        """celery beat with the DatabaseScheduler, as the Procfile runs it: the sweeps production relies on."""
        self._spawn(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "leadflow",
                "beat",
                "--loglevel",
                "warning",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
        )

    def start_worker(self) -> None:
        self._spawn("celery", self.celery_command())
        time.sleep(3)  # connected to Redis and consuming

    def stop_worker(self) -> None:
        self._stop(["celery"])

    def _spawn(self, name: str, command: list[str]) -> None:
        out = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own venv's executables
            command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        self._stop(list(self.processes))
        if self.autovacuum is not None:
            self.autovacuum.stop()
            log(
                f"  autovacuum stand-in: {self.autovacuum.analyzed} ANALYZE, {self.autovacuum.vacuumed} VACUUM"
                + (f"; failed: {self.autovacuum.error}" if self.autovacuum.error else "")
            )
            self.autovacuum = None

    def _stop(self, names: list[str]) -> None:
        processes = [self.processes.pop(name) for name in names if name in self.processes]
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)  # the session we started: this process and its children
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# Measurements -------------------------------------------------------------------------------------------------------


# What the worker (and beat's sweeps) still have to do: a drained pipeline has none of these.
BACKLOG_SQL = {
    "outbox_events_unhandled": "SELECT count(*) FROM leads_outboxevent WHERE handled_at IS NULL",
    "submissions_received_or_failed": "SELECT count(*) FROM leads_inboundsubmission "
    "WHERE status IN ('received', 'failed')",
    "provider_events_received_or_failed": "SELECT count(*) FROM messaging_providerevent "
    "WHERE status IN ('received', 'failed')",
    "sales_not_planned": "SELECT count(*) FROM campaigns_leadsale WHERE deliveries_planned_at IS NULL",
    "sale_deliveries_pending_or_failed": "SELECT count(*) FROM campaigns_saledelivery "
    "WHERE status IN ('pending', 'failed')",
    "webhook_deliveries_pending": "SELECT count(*) FROM integrations_webhookdelivery WHERE status = 'pending'",
    "webhook_deliveries_failed": "SELECT count(*) FROM integrations_webhookdelivery WHERE status = 'failed'",
}


def worker_backlog(conn: psycopg.Connection) -> dict[str, int]:
    return {name: conn.execute(query).fetchone()[0] for name, query in BACKLOG_SQL.items()}


def outbox_pending(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM leads_outboxevent WHERE handled_at IS NULL").fetchone()[0]


def wait_for_worker(dsn: str, *, timeout: float = 600) -> dict:
    """Let the Celery worker finish the outbox events before the next measurement needs the CPU.

    An event whose task found it locked (``outbox_handle`` uses SKIP LOCKED) is left for beat's sweep, which re-sends
    events older than a minute. Beat is not running here: when the queue is empty and nothing moves for two
    seconds, this sends the sweep itself (``outbox_sweep(older_than=0)``) and counts what it re-sent.
    """
    import redis
    from django.conf import settings

    from leads.services.outbox import outbox_sweep

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    started = time.perf_counter()
    first = pending = outbox_pending(dsn)
    resent = sweeps = 0
    last_change, last_pending = time.perf_counter(), pending
    while pending and time.perf_counter() - started < timeout:
        time.sleep(0.25)
        pending = outbox_pending(dsn)
        if pending != last_pending:
            last_change, last_pending = time.perf_counter(), pending
        elif time.perf_counter() - last_change > 2 and not broker.llen("celery"):
            resent += outbox_sweep(older_than=timedelta(0), limit=100_000)
            sweeps += 1
            last_change = time.perf_counter()
    return {
        "pending_at_end_of_run": first,
        "drain_s": round(time.perf_counter() - started, 1),
        "resent_by_sweep": resent,
        "sweeps": sweeps,
        "left": pending,
    }


def ingest_accept(response: loadgen.Response) -> bool:
    return response.status_code == 201 and response.json().get("status") == "accepted"


def created(response: loadgen.Response) -> bool:
    return response.status_code == 201


def block(config: Config) -> int:
    """Payload numbers one closed-loop run can use up (at most 3000 requests a second)."""
    return int(config.seconds * 3000) + 1000


class Counter:
    """Unique payload numbers across every ingest run of one benchmark."""

    def __init__(self):
        self.next = 0

    def take(self, count: int) -> int:
        start, self.next = self.next, self.next + count
        return start


def ingest_maker(keys: list[str], run: int, offset: int):
    def make(n: int) -> Request:
        return Request(
            "POST", "/api/v1/leads/ingest/", keys[n % len(keys)], "ingest", ingest_payload(offset + n, run=run)
        )

    return make


def minimal_maker(keys: list[str], run: int, offset: int):
    def make(n: int) -> Request:
        return Request(
            "POST", "/bench/minimal-lead/", keys[n % len(keys)], "minimal", minimal_payload(offset + n, run=run)
        )

    return make


def measured(servers: Servers, coroutine) -> tuple[loadgen.Run, dict]:
    """Run one measurement; account the CPU every component spent on it and the database's background work."""
    dsn = servers.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    before, background = cpu.snapshot(servers.pgids()), database_background(dsn)
    run = asyncio.run(coroutine)
    after = cpu.snapshot(servers.pgids())
    used = cpu.usage(before, after, seconds=run.seconds, requests=len(run.samples))
    later = database_background(dsn)
    used["database_background"] = {
        "checkpoints": later["checkpoints"] - background["checkpoints"],
        "autovacuum": sorted(t for t, n in later["autovacuum"].items() if n > background["autovacuum"].get(t, 0)),
        "autoanalyze": sorted(t for t, n in later["autoanalyze"].items() if n > background["autoanalyze"].get(t, 0)),
    }
    return run, used


def database_background(dsn: str) -> dict:
    """Checkpoints and autovacuum/autoanalyze runs so far: what else the 2 cores were doing."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        checkpoints = conn.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter").fetchone()[0]
        rows = conn.execute("SELECT relname, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables").fetchall()
    return {
        "checkpoints": checkpoints,
        "autovacuum": {name: vacuums for name, vacuums, _ in rows},
        "autoanalyze": {name: analyzes for name, _, analyzes in rows},
    }


def latency_over_time(run: loadgen.Run) -> list[dict]:
    """Per second of an open-loop run: requests, median and worst latency (are the slow ones spread or bunched?)."""
    return [
        {"second": window.pop("window"), **window}
        for window in loadgen.windows([(s.due, s.ms) for s in run.samples], seconds=1)
    ]


def saturation(servers: Servers, maker, *, sweep: list[int], seconds: float, accept, dsn: str | None) -> dict:
    """Closed loop at each concurrency; the best accepted/s is the saturation rate."""
    levels = []
    for concurrency in sweep:
        run, used = measured(
            servers,
            loadgen.closed_loop(servers.base_url, maker(), concurrency=concurrency, seconds=seconds, accept=accept),
        )
        level = {"concurrency": concurrency, **summarize(run.samples, run.seconds), "cpu": used}
        level["accepted_per_s"] = level.pop("requests_per_s")
        level["error_samples"] = sorted({s.detail for s in run.errors()})[:3]
        if dsn:
            level["worker"] = wait_for_worker(dsn)
        levels.append(level)
        log(
            f"    c={concurrency:>3}: {level['accepted_per_s']:>7.1f}/s  p50 {level['p50_ms']:.1f} ms  "
            f"p99 {level['p99_ms']:.1f} ms  errors {level['errors']}"
            + (
                f"  (worker: {level['worker']['pending_at_end_of_run']} events left at the end, drained in "
                f"{level['worker']['drain_s']} s, {level['worker']['resent_by_sweep']} re-sent by the sweep)"
                if dsn
                else ""
            )
        )
    best = max(levels, key=lambda lv: lv["accepted_per_s"])
    return {"accepted_per_s": best["accepted_per_s"], "at_concurrency": best["concurrency"], "levels": levels}


def ingest_phase(
    config: Config, servers: Servers, workspace, counter: Counter, run: int, label: str, without_worker: bool = False
) -> dict:
    """Ingest first (saturation sweep, then half that rate), the minimal endpoint last; its rows are removed after."""
    base = servers.base_url
    leads_before = lead_count(config.dsn, workspace.organization_id)
    log(f"  warm-up ({label})")
    asyncio.run(
        loadgen.closed_loop(
            base,
            ingest_maker(workspace.ingest_keys, run, counter.take(20_000)),
            concurrency=4,
            seconds=3,
            accept=ingest_accept,
        )
    )
    wait_for_worker(config.dsn)
    log(f"  ingest API, closed loop ({label})")
    ingest = saturation(
        servers,
        lambda: ingest_maker(workspace.ingest_keys, run, counter.take(block(config))),
        sweep=config.ingest_sweep,
        seconds=config.seconds,
        accept=ingest_accept,
        dsn=config.dsn,
    )
    rate = ingest["accepted_per_s"] / 2
    log(f"  ingest at half that rate, open loop: {rate:.0f}/s for {2 * config.seconds:.0f} s ({label})")
    paced, used = measured(
        servers,
        loadgen.open_loop(
            base,
            ingest_maker(workspace.ingest_keys, run, counter.take(int(rate * 2 * config.seconds) + 100)),
            rate=rate,
            seconds=2 * config.seconds,
            accept=ingest_accept,
        ),
    )
    half = {"rate_per_s": round(rate, 1), **summarize(paced.samples, paced.seconds), "cpu": used}
    half["over_time"] = latency_over_time(paced)
    half["service_p99_ms"] = round(loadgen.percentile([s.service_ms for s in paced.ok], 99), 2)
    half["error_samples"] = sorted({s.detail for s in paced.errors()})[:3]
    half["worker"] = wait_for_worker(config.dsn)
    log(
        f"    p50 {half['p50_ms']:.1f} ms  p95 {half['p95_ms']:.1f} ms  p99 {half['p99_ms']:.1f} ms  errors {half['errors']}"
    )
    no_worker = None
    if without_worker:
        no_worker = ingest_without_worker(config, servers, workspace, counter, run, ingest["at_concurrency"], rate)
    log(f"  minimal DRF create endpoint, closed loop ({label})")
    asyncio.run(
        loadgen.closed_loop(
            base,
            minimal_maker(workspace.minimal_keys, run, counter.take(20_000)),
            concurrency=4,
            seconds=3,
            accept=created,
        )
    )
    minimal = saturation(
        servers,
        lambda: minimal_maker(workspace.minimal_keys, run, counter.take(block(config))),
        sweep=config.ingest_sweep,
        seconds=config.seconds,
        accept=created,
        dsn=None,
    )
    with psycopg.connect(config.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM leads_lead WHERE organization_id = %s", [workspace.minimal_organization_id])
        conn.execute("VACUUM leads_lead")
    return {
        "leads_in_table_before": leads_before,
        "ingest": ingest,
        "minimal": minimal,
        "ratio_to_minimal": round(ingest["accepted_per_s"] / minimal["accepted_per_s"], 3),
        "half_rate": half,
        "without_worker": no_worker,
    }


def ingest_without_worker(
    config: Config, servers: Servers, workspace, counter: Counter, run: int, concurrency: int, rate: float
) -> dict:
    """The same two measurements with the Celery worker stopped (tasks wait in Redis): what the worker costs ingest."""
    log("  the same with the Celery worker stopped (tasks only queued)")
    servers.stop_worker()
    try:
        closed, used = measured(
            servers,
            loadgen.closed_loop(
                servers.base_url,
                ingest_maker(workspace.ingest_keys, run, counter.take(block(config))),
                concurrency=concurrency,
                seconds=config.seconds,
                accept=ingest_accept,
            ),
        )
        saturated = {"concurrency": concurrency, **summarize(closed.samples, closed.seconds), "cpu": used}
        saturated["accepted_per_s"] = saturated.pop("requests_per_s")
        paced, used = measured(
            servers,
            loadgen.open_loop(
                servers.base_url,
                ingest_maker(workspace.ingest_keys, run, counter.take(int(rate * 2 * config.seconds) + 100)),
                rate=rate,
                seconds=2 * config.seconds,
                accept=ingest_accept,
            ),
        )
        half = {"rate_per_s": round(rate, 1), **summarize(paced.samples, paced.seconds), "cpu": used}
        half["over_time"] = latency_over_time(paced)
    finally:
        servers.start_worker()
    log(
        f"    saturation {saturated['accepted_per_s']:.1f}/s at c={concurrency}; half rate p50 {half['p50_ms']:.1f} ms  "
        f"p95 {half['p95_ms']:.1f} ms  p99 {half['p99_ms']:.1f} ms"
    )
    drained = wait_for_worker(config.dsn, timeout=900)
    log(f"    worker restarted: {drained['pending_at_end_of_run']} queued events handled in {drained['drain_s']} s")
    return {"saturation": saturated, "half_rate": half, "drain": drained}


def lead_count(dsn: str, organization_id: int) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM leads_lead WHERE organization_id = %s", [organization_id]).fetchone()[
            0
        ]


def search_terms(dsn: str, organization_id: int, count: int = 400) -> list[tuple[str, str]]:
    """Real values from the table: whole names, first or last names, email fragments, phone fragments, company words."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT first_name, last_name, email, phone, company FROM leads_lead TABLESAMPLE SYSTEM (2) REPEATABLE (42) "
            "WHERE organization_id = %s AND duplicate_of_id IS NULL LIMIT 5000",
            [organization_id],
        ).fetchall()
    r = random.Random(11)  # noqa: S311 - a repeatable mix, nothing secret
    r.shuffle(rows)
    kinds = [
        ("full_name", 22),
        ("first_name", 10),
        ("last_name", 10),
        ("email_fragment", 14),
        ("email", 6),
        ("phone_fragment", 12),
        ("phone_formatted", 8),
        ("company_word", 12),
        ("company", 6),
    ]
    table = [kind for kind, weight in kinds for _ in range(weight)]
    terms: list[tuple[str, str]] = []
    for first, last, email, phone, company in rows:
        kind = r.choice(table)
        term = ""
        if kind == "full_name":
            term = f"{first} {last}"
        elif kind == "first_name":
            term = first
        elif kind == "last_name":
            term = last
        elif kind == "email_fragment" and email:
            term = email.split("@")[0][: r.randint(5, 9)]
        elif kind == "email" and email:
            term = email
        elif kind == "phone_fragment" and phone:
            term = phone[-r.randint(5, 7) :]
        elif kind == "phone_formatted" and phone.startswith("+91"):
            term = f"{phone[3:8]} {phone[8:]}" if r.random() < 0.5 else f"+91 {phone[3:8]} {phone[8:]}"
        elif kind == "company_word" and company:
            term = company.split()[0]
        elif kind == "company" and company:
            term = " ".join(company.split()[:2])
        if term:
            terms.append((kind, term))
        if len(terms) >= count:
            break
    return terms


def read_makers(workspace, terms):
    keys = workspace.read_keys
    r = random.Random(5)  # noqa: S311 - a repeatable mix

    def key(n: int) -> str:
        return keys[n % len(keys)]

    def url(**params) -> str:
        return "/api/v1/leads/?" + urllib.parse.urlencode({"page_size": 50, **params})

    tags = [t for t, _ in TAGS]

    def a_filter(n: int) -> tuple[str, dict]:
        kind = ("stage", "source", "owner", "tag", "score_min")[n % 5]
        value = {
            "stage": lambda: r.choice(workspace.stage_ids),
            "source": lambda: r.choice(SOURCES),
            "owner": lambda: r.choice([*workspace.owner_ids, "none"]),
            "tag": lambda: r.choice(tags),
            "score_min": lambda: r.choice([50, 70, 80, 90, 95, 99]),
        }[kind]()
        return kind, {kind: value}

    def newest(n: int) -> Request:
        return Request("GET", url(), key(n), "newest")

    def filtered(n: int) -> Request:
        kind, params = a_filter(n)
        return Request("GET", url(**params), key(n), f"filter:{kind}={next(iter(params.values()))}")

    def deep(n: int) -> Request:
        if n % 2 == 0:
            return Request("GET", url(), key(n), "deep:newest")
        kind, params = a_filter(n // 2)
        return Request("GET", url(**params), key(n), f"deep:{kind}={next(iter(params.values()))}")

    def search(n: int) -> Request:
        kind, term = terms[n % len(terms)]
        return Request("GET", url(q=term), key(n), f"search:{kind}:{term}")

    return {"newest": newest, "filtered": filtered, "deep": deep, "search": search}


def group(samples, prefix_len: int) -> dict:
    groups: dict[str, list] = {}
    for sample in samples:
        name = ":".join(sample.label.split("|")[0].split(":")[:prefix_len]).split("=")[0]
        groups.setdefault(name, []).append(sample)
    return {name: summarize(items) for name, items in sorted(groups.items())}


def read_phase(config: Config, servers: Servers, workspace, terms) -> dict:
    base = servers.base_url
    makers = read_makers(workspace, terms)
    c = config.read_concurrency
    log("  warm-up: every kind of read")
    for name in ("newest", "filtered", "search"):
        asyncio.run(loadgen.closed_loop(base, makers[name], concurrency=c, seconds=3))
    asyncio.run(loadgen.cursor_chains(base, makers["deep"], depth=20, concurrency=c, seconds=3))
    results = {}
    for name in ("newest", "filtered", "deep", "search"):
        seconds = config.seconds * (1.5 if name in ("search", "deep") else 1)
        if name == "deep":
            run, used = measured(
                servers, loadgen.cursor_chains(base, makers["deep"], depth=20, concurrency=c, seconds=seconds)
            )
            deep_pages = [s for s in run.samples if not s.label.endswith("|page=1")]
            summary = {**summarize(deep_pages, run.seconds), "pages_followed": 20}
            summary["page_20"] = summarize([s for s in run.samples if s.label.endswith("|page=20")])
            summary["by_start"] = group(deep_pages, 2)
        else:
            run, used = measured(servers, loadgen.closed_loop(base, makers[name], concurrency=c, seconds=seconds))
            summary = summarize(run.samples, run.seconds)
            if name in ("filtered", "search"):
                summary["by_kind"] = group(run.samples, 2)
        summary["cpu"] = used
        summary["error_samples"] = sorted({s.detail for s in run.errors()})[:3]
        summary["slowest"] = [
            {"label": s.label, "ms": round(s.ms, 1), "sql": s.sql}
            for s in sorted(run.samples, key=lambda s: s.ms, reverse=True)[:8]
        ]
        results[name] = summary
        log(
            f"    {name:<9} p50 {summary['p50_ms']:6.1f}  p95 {summary['p95_ms']:6.1f}  p99 {summary['p99_ms']:6.1f} ms  "
            f"({summary['requests']} requests, {summary.get('requests_per_s', 0)}/s, SQL/request "
            f"{summary['sql_per_request'].get('median')}, errors {summary['errors']})"
        )
    return results


def capture(base_url: str, capture_dir: Path, request: Request, label: str) -> list[dict]:
    from .sqlchecks import capture_read

    request.capture = label
    asyncio.run(loadgen.one_request(base_url, request))
    return capture_read(str(capture_dir), label)


def follow_to_page(base_url: str, request: Request, page: int) -> Request:
    async def walk():
        current = request
        for _ in range(page - 1):
            _, body, _ = await loadgen.one_request(base_url, current)
            current = Request("GET", httpx.URL(body["next"]).raw_path.decode(), current.key, current.label)
        return current

    return asyncio.run(walk())


def sql_phase(
    config: Config, servers: Servers, workspace, reads: dict, terms, capture_dir: Path, counter: Counter, run: int
) -> dict:
    from .sqlchecks import explain, generic_plan_check, main_query, prelude, statements_summary

    base = servers.base_url
    makers = read_makers(workspace, terms)
    key = workspace.read_keys[0]
    url = "/api/v1/leads/?page_size=50"
    stage = workspace.stage_ids[1]
    cases = [
        ("newest", Request("GET", url, key)),
        (f"filter-stage-{stage}", Request("GET", f"{url}&stage={stage}", key)),
        ("filter-source-facebook", Request("GET", f"{url}&source=facebook", key)),
        (f"filter-owner-{workspace.owner_ids[3]}", Request("GET", f"{url}&owner={workspace.owner_ids[3]}", key)),
        ("filter-owner-none", Request("GET", f"{url}&owner=none", key)),
        ("filter-tag-vip", Request("GET", f"{url}&tag=vip", key)),
        ("filter-tag-plot", Request("GET", f"{url}&tag=plot", key)),
        ("filter-score_min-90", Request("GET", f"{url}&score_min=90", key)),
        ("deep-page-20", follow_to_page(base, Request("GET", url, key), 20)),
        (f"deep-page-20-stage-{stage}", follow_to_page(base, Request("GET", f"{url}&stage={stage}", key), 20)),
    ]
    seen_kinds = set()
    for kind, term in terms:
        if kind not in seen_kinds:
            seen_kinds.add(kind)
            cases.append((f"search-{kind}", makers["search"](terms.index((kind, term)))))
    # A plausible word no lead has: the worst case for a plan that walks the newest-first index looking for 50.
    cases.append(("search-rare_word", Request("GET", "/api/v1/leads/?page_size=50&q=zaveri", key)))
    slow_search = []
    for sample in reads["search"]["slowest"]:
        label = sample["label"]
        if label not in slow_search:
            slow_search.append(label)
    for n, label in enumerate(slow_search[:5]):
        _, kind, term = label.split(":", 2)
        cases.append(
            (
                f"search-slowest-{n + 1}",
                Request("GET", "/api/v1/leads/?" + urllib.parse.urlencode({"page_size": 50, "q": term}), key),
            )
        )
    for n, sample in enumerate(reads["filtered"]["slowest"][:3]):
        kind, value = sample["label"].split(":", 1)[1].split("=", 1)
        cases.append((f"filter-slowest-{n + 1}", Request("GET", f"{url}&{kind}={urllib.parse.quote(value)}", key)))
    captured = {}
    for label, request in cases:
        statements = capture(base, capture_dir, request, label)
        entry = {"request": request.path, **statements_summary(statements)}
        main = main_query(statements)
        if main:
            entry["explain"] = explain(main, prelude(statements))
            if main.startswith("SELECT DISTINCT "):
                # django-filter adds .distinct() for MultipleChoiceFilter; the same query without it:
                entry["explain_without_distinct"] = explain(
                    "SELECT " + main[len("SELECT DISTINCT ") :], prelude(statements)
                )
        captured[label] = entry
    ingest_key = workspace.ingest_keys[0]
    offset = counter.take(10)
    captured["ingest"] = {
        "request": "/api/v1/leads/ingest/",
        **statements_summary(
            capture(
                base,
                capture_dir,
                Request("POST", "/api/v1/leads/ingest/", ingest_key, body=ingest_payload(offset, run=run)),
                "ingest",
            )
        ),
    }
    captured["minimal"] = {
        "request": "/bench/minimal-lead/",
        **statements_summary(
            capture(
                base,
                capture_dir,
                Request(
                    "POST", "/bench/minimal-lead/", workspace.minimal_keys[0], body=minimal_payload(offset, run=run)
                ),
                "minimal",
            )
        ),
    }
    searches = []
    for label, entry in captured.items():
        if label.startswith("search-") and not label.startswith("search-slowest") and entry.get("explain"):
            kind = label[len("search-") :]
            if kind in (
                "first_name",
                "full_name",
                "email_fragment",
                "phone_fragment",
                "company_word",
                "email",
                "rare_word",
            ):
                term = urllib.parse.parse_qs(urllib.parse.urlsplit(entry["request"]).query)["q"][0]
                searches.append(
                    {"kind": kind, "term": term, "sql": entry["explain"]["sql"], "setup": entry["explain"]["setup"]}
                )
    generic = generic_plan_check(searches)
    reads_captured = {k: v for k, v in captured.items() if k not in ("ingest", "minimal")}
    return {
        "requests": captured,
        "count_star_in_any_read": any(v["count_star"] for v in reads_captured.values()),
        "max_offset_in_any_read": max(v["max_offset"] for v in reads_captured.values()),
        "generic_plan": generic,
    }


@contextlib.contextmanager
def reported_failure(results: dict, key: str):
    """A diagnostic phase that fails is recorded in the results instead of losing the measurements before it."""
    try:
        yield
    except Exception as error:
        import traceback

        log(f"  {key} failed: {type(error).__name__}: {error} (recorded in results.json)")
        results[key] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


def profile_phase(workspace, counter: Counter) -> dict:
    from .profile_ingest import profile_ingest, time_requests

    offset = counter.take(10_000)
    profile = profile_ingest(
        key=workspace.ingest_keys[1], payloads=[ingest_payload(offset + n, run=4) for n in range(201)]
    )
    profile["unprofiled_ingest"] = time_requests(
        key=workspace.ingest_keys[2],
        payloads=[ingest_payload(offset + 1000 + n, run=4) for n in range(201)],
        path="/api/v1/leads/ingest/",
    )
    profile["unprofiled_minimal"] = time_requests(
        key=workspace.minimal_keys[1],
        payloads=[minimal_payload(offset + n, run=4) for n in range(201)],
        path="/bench/minimal-lead/",
    )
    return profile


def code_version() -> dict:
    """The commit measured, and whether the working tree differed from it."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603, S607
        return result.stdout.rstrip("\n")

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if not line[3:].startswith("bench/")]
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "uncommitted": changed,
    }


def app_changes(start: str, end: str) -> list[str]:
    """Files outside bench/ and README.md that differ between two commits (what the servers might not have run)."""
    if start == end:
        return []
    result = subprocess.run(  # noqa: S603
        ["git", "diff", "--name-only", start, end],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return [name for name in result.stdout.split() if not name.startswith("bench/") and name != "README.md"]


def machine_info(config: Config) -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    from .sqlchecks import shipped_connection

    with shipped_connection() as conn:  # the settings a served request's session has (OPTIONS applied)
        pg = conn.execute("SHOW server_version").fetchone()[0]
        pg_settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in (
                "shared_buffers",
                "work_mem",
                "effective_cache_size",
                "random_page_cost",
                "jit",
                "synchronous_commit",
                "max_parallel_workers_per_gather",
                "plan_cache_mode",
            )
        }
    import django
    import gunicorn

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
        "gunicorn": gunicorn.__version__,
        "postgresql": pg,
        "postgresql_settings": pg_settings,
        "note": "PostgreSQL, Redis, gunicorn, the Celery worker and the load generator share these cores; "
        "PostgreSQL settings as a served request's session sees them",
    }


def prepare(config: Config, *, welcome: bool = False):
    """Recreate the bench database and Redis db, migrate, create the workspace; returns what a run needs."""
    if config.port == 0:
        config.port = free_port()
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    capture_dir = workdir / "sql"
    capture_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadflow.settings.bench",
        "DATABASE_URL": config.database_url,
        "REDIS_URL": config.redis_url,
        "CELERY_BROKER_URL": config.redis_url,
        "BENCH_CAPTURE_DIR": str(capture_dir),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    log(f"LeadFlow benchmark on {config.database_name}; logs and captured SQL in {workdir}")

    from .workspace import database_recreate, workspace_create

    database_recreate(admin_dsn=config.admin_dsn, name=config.database_name)
    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    import redis
    from django.conf import settings
    from django.core.management import call_command

    db_index = int(urllib.parse.urlsplit(config.redis_url).path.lstrip("/") or 0)
    if db_index < 2:
        raise SystemExit("BENCH_REDIS_URL must use a Redis database of its own (2 or above): the benchmark empties it")
    redis.Redis.from_url(config.redis_url).flushdb()

    call_command("migrate", verbosity=0)
    workspace = workspace_create(read_keys=config.read_keys, ingest_keys=config.ingest_keys, welcome=welcome)
    shipped = {
        "OPTIONS": settings.DATABASES["default"].get("OPTIONS", {}),
        "CONN_MAX_AGE": settings.DATABASES["default"]["CONN_MAX_AGE"],
    }
    results: dict = {
        "command": "make bench" + (f" (BENCH_LEADS={config.leads})" if config.leads != 1_000_000 else ""),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "config": {
            "leads": config.leads,
            "seconds_per_measurement": config.seconds,
            "read_concurrency": config.read_concurrency,
            "ingest_concurrency_sweep": config.ingest_sweep,
            "gunicorn": f"gthread, {config.workers} workers x {config.threads} threads",
            "celery": f"prefork, concurrency {config.celery_concurrency} (a real worker on the bench database)",
            "api_keys": f"{config.read_keys} read keys, {config.ingest_keys} ingest keys, requests spread round robin "
            "(the shipped throttle allows 6000/min per key)",
            "database_options_as_shipped": shipped,
            "debug": settings.DEBUG,
        },
        "machine": machine_info(config),
        "code": code_version(),
    }
    return env, workdir, capture_dir, workspace, results, began


def ingest_only(config: Config) -> int:
    """`BENCH_ONLY=ingest make bench`: the ingest and minimal endpoints on an empty table, one concurrency each,
    with CPU per component; nothing written to results. For trying a change to the intake in a minute."""
    env, workdir, _capture_dir, workspace, _results, _began = prepare(config)
    concurrency = config.ingest_sweep[len(config.ingest_sweep) // 2]
    counter, servers = Counter(), Servers(config, env, workdir)
    try:
        servers.start()
        for label, maker, accept, dsn in (
            ("ingest", lambda n: ingest_maker(workspace.ingest_keys, 1, counter.take(n)), ingest_accept, config.dsn),
            ("minimal", lambda n: minimal_maker(workspace.minimal_keys, 1, counter.take(n)), created, None),
        ):
            asyncio.run(loadgen.closed_loop(servers.base_url, maker(20_000), concurrency=4, seconds=3, accept=accept))
            if dsn:
                wait_for_worker(dsn)
            level = saturation(
                servers,
                lambda m=maker: m(block(config)),
                sweep=[concurrency],
                seconds=config.seconds,
                accept=accept,
                dsn=dsn,
            )["levels"][0]
            log(f"  {label}: {level['accepted_per_s']:.1f}/s, CPU ms per request {level['cpu']['cpu_ms_per_request']}")
    finally:
        servers.stop()
    return 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop gunicorn and Celery
    config = Config()
    if os.environ.get("BENCH_ONLY") == "ingest":
        return ingest_only(config)
    env, workdir, capture_dir, workspace, results, began = prepare(config)
    counter = Counter()
    servers = Servers(config, env, workdir)
    try:
        log("Starting gunicorn and a Celery worker")
        servers.start()
        log("Ingest on an empty table")
        results["ingest_empty"] = ingest_phase(config, servers, workspace, counter, run=1, label="empty")

        log(f"Seeding {config.leads:,} leads with COPY")
        from .seed import SeedPlan, now_utc, seed_leads

        with psycopg.connect(config.dsn, autocommit=True) as conn:
            start_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM leads_lead").fetchone()[0]
        plan = SeedPlan(
            workspace.organization_id, workspace.stage_ids, workspace.owner_ids, config.leads, start_id, now_utc()
        )
        results["seed"] = seed_leads(config.dsn, plan, log=log)

        log(f"Reads at {config.leads:,} leads (concurrency {config.read_concurrency})")
        terms = search_terms(config.dsn, workspace.organization_id)
        results["search_terms"] = len(terms)
        results["reads"] = read_phase(config, servers, workspace, terms)

        log(f"Ingest at {config.leads:,} leads")
        results["ingest_full"] = ingest_phase(
            config, servers, workspace, counter, run=2, label=f"{config.leads:,} leads", without_worker=True
        )

        log("SQL per request, EXPLAIN ANALYZE, generic plans")
        with reported_failure(results, "sql"):
            results["sql"] = sql_phase(config, servers, workspace, results["reads"], terms, capture_dir, counter, run=3)

        log("Profiling ingest requests in-process")
        with reported_failure(results, "profile"):
            results["profile"] = profile_phase(workspace, counter)
        wait_for_worker(config.dsn)
    finally:
        servers.stop()
    results["duration_s"] = round(time.perf_counter() - began, 1)
    results["code_at_end"] = code_version()
    results["code_at_end"]["app_changed"] = app_changes(results["code"]["commit"], results["code_at_end"]["commit"])
    if results["code_at_end"]["app_changed"]:
        log(f"Note: application code changed during the run: {', '.join(results['code_at_end']['app_changed'])}")
    out = Path(__file__).resolve().parent
    report.write(results, json_path=out / "results.json", markdown_path=out / "RESULTS.md")
    print(report.table(results), flush=True)
    log(f"Wrote {out / 'results.json'} and {out / 'RESULTS.md'} in {results['duration_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
