"""Seed leads with PostgreSQL COPY (psycopg 3 ``cursor.copy()``): indexes and foreign keys are dropped first and
rebuilt afterwards (one sort per index instead of a million index insertions), then VACUUM ANALYZE.

The generated columns (``search_vector``, ``search_text``) are filled by PostgreSQL during COPY. Ids follow
``received_at``, as they do for leads that arrive one after another.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import psycopg

from .data import (
    CAMPAIGNS,
    CONSENT_TEXT,
    LOST_REASONS,
    SOURCE_TABLE,
    STAGE_TABLE,
    TAG_TABLE,
    TIMELINES,
    USER_AGENT,
    contact,
    json_text,
    mix,
    rng,
)

TABLE = "leads_lead"
DUPLICATE_RATE = 0.02
SPAN = timedelta(days=730)
CHUNK = 5_000
NULL = "\\N"

ROW_COLUMNS = [
    "id",
    "organization_id",
    "source",
    "external_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "job_title",
    "city",
    "state",
    "postal_code",
    "country",
    "custom",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "ad_id",
    "form_id",
    "ad_campaign_id",
    "landing_page",
    "referrer",
    "ip_address",
    "user_agent",
    "consent_given",
    "consent_text",
    "consent_at",
    "consent_ip",
    "consent_method",
    "consent_certificate_url",
    "stage_id",
    "owner_id",
    "assigned_at",
    "score",
    "grade",
    "score_reasons",
    "tags",
    "deal_value",
    "won_amount",
    "won_on",
    "lost_reason",
    "over_quota",
    "received_at",
    "first_contacted_at",
    "created_at",
    "updated_at",
    "duplicate_of_id",
    "duplicate_count",
]


@dataclass
class SeedPlan:
    organization_id: int
    stage_ids: list[int]  # by position: New, Contacted, Qualified, Proposal, Won, Lost
    owner_ids: list[int]
    count: int
    start_id: int
    end_at: datetime
    duplicates: dict[int, int] = field(default_factory=dict)  # row → the row it duplicates
    duplicate_counts: dict[int, int] = field(default_factory=dict)

    def plan_duplicates(self, seed: int = 7) -> None:
        r = rng(seed)
        for k in range(100, self.count):
            if r.random() < DUPLICATE_RATE:
                original = k - r.randint(1, min(k, 4_000))  # within a few days: inside the 30-day window
                while original in self.duplicates:
                    original = self.duplicates[original]
                self.duplicates[k] = original
                self.duplicate_counts[original] = self.duplicate_counts.get(original, 0) + 1


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def _line(k: int, plan: SeedPlan, r, start: datetime, step: float) -> str:
    original = plan.duplicates.get(k)
    if original is None:
        c = contact(k)
    else:
        c = contact(original)
        if r.random() < 0.3:  # the same phone with another email
            c = replace(c, email=contact(k).email or c.email)
    h = mix(k, 3)
    source, prefix = SOURCE_TABLE[h % len(SOURCE_TABLE)]
    received = start + timedelta(seconds=(k + r.random()) * step)
    campaign = CAMPAIGNS[(h >> 12) % len(CAMPAIGNS)]
    utm_source = utm_medium = utm_campaign = utm_term = gclid = fbclid = ad_id = form_id = ad_campaign = ""
    landing = referrer = user_agent = ""
    ip = NULL
    if source in ("facebook", "google_ads", "linkedin"):
        utm_source = {"facebook": "facebook", "google_ads": "google", "linkedin": "linkedin"}[source]
        utm_medium = "cpc" if source == "google_ads" else "paid_social"
        utm_campaign = campaign
        ad_id, form_id, ad_campaign = str(h % 10**12), str((h >> 8) % 10**10), str(23840000000 + (h >> 20) % 1000)
        landing = f"https://www.acmerealty.example/lp/{campaign}"
        if source == "google_ads":
            gclid = f"Cj0K{h:016x}"
            utm_term = "flats near me" if h % 3 == 0 else ""
        elif source == "facebook":
            fbclid = f"IwAR{h:016x}"
    elif source in ("form", "api"):
        ip = f"{49 + h % 150}.{(h >> 8) % 256}.{(h >> 16) % 256}.{1 + (h >> 24) % 254}"
        if source == "form":
            user_agent = USER_AGENT
            landing = "https://www.acmerealty.example/contact"
            referrer = "https://www.google.com/" if h % 2 else ""
    consent = r.random() < 0.8
    position = STAGE_TABLE[(h >> 28) % len(STAGE_TABLE)]
    owner = NULL
    assigned_at = NULL
    if r.random() >= 0.25:
        owner = str(plan.owner_ids[(h >> 36) % len(plan.owner_ids)])
        assigned_at = _ts(received + timedelta(seconds=30 + (h >> 40) % 7200))
    score = int(r.triangular(0, 100, 35))
    grade = "hot" if score >= 70 else "warm" if score >= 40 else "cold"
    n_tags = r.random()
    n_tags = 0 if n_tags < 0.55 else 1 if n_tags < 0.85 else 2 if n_tags < 0.97 else 3
    tags = sorted({TAG_TABLE[r.randrange(len(TAG_TABLE))] for _ in range(n_tags)})
    amount = f"{(25 + (h >> 44) % 400) * 100000}.00"
    contacted = _ts(received + timedelta(minutes=2 + (h >> 48) % 600)) if r.random() < 0.65 else NULL
    updated = received + timedelta(hours=(h >> 52) % 200)
    custom = (
        json_text({"budget": (25 + (h >> 20) % 60) * 100000, "timeline": TIMELINES[(h >> 30) % 4]})
        if h % 10 < 7
        else "{}"
    )
    values = (
        str(plan.start_id + k),
        str(plan.organization_id),
        source,
        f"{prefix}-{k}" if prefix else "",
        c.first_name,
        c.last_name,
        c.full_name,
        c.email,
        c.phone,
        c.company,
        c.job_title,
        c.city,
        c.state,
        c.postal_code,
        c.country,
        custom,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        "",
        gclid,
        fbclid,
        ad_id,
        form_id,
        ad_campaign,
        landing,
        referrer,
        ip,
        user_agent,
        "t" if consent else "f",
        CONSENT_TEXT if consent else "",
        _ts(received) if consent else NULL,
        ip if consent else NULL,
        "checkbox" if consent else "",
        "",
        str(plan.stage_ids[position]),
        owner,
        assigned_at,
        str(score),
        grade,
        "[]",
        "{" + ",".join(tags) + "}",
        amount if position in (2, 3, 4) else NULL,
        amount if position == 4 else NULL,
        (received + timedelta(days=20)).date().isoformat() if position == 4 else NULL,
        LOST_REASONS[(h >> 56) % len(LOST_REASONS)] if position == 5 else "",
        "f",
        _ts(received),
        contacted,
        _ts(received),
        _ts(updated),
        str(plan.start_id + original) if original is not None else NULL,
        str(plan.duplicate_counts.get(k, 0)),
    )
    return "\t".join(values)


def _copy_worker(dsn: str, plan: SeedPlan, worker: int, workers: int) -> None:
    """COPY every chunk c with c % workers == worker, in order, so the heap stays roughly in received_at order."""
    start = plan.end_at - SPAN
    step = SPAN.total_seconds() / plan.count
    r = rng(1000 + worker)
    columns = ", ".join(ROW_COLUMNS)
    with psycopg.connect(dsn, autocommit=False) as conn, conn.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        with cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
            for first in range(worker * CHUNK, plan.count, workers * CHUNK):
                last = min(first + CHUNK, plan.count)
                copy.write("\n".join(_line(k, plan, r, start, step) for k in range(first, last)) + "\n")
        conn.commit()


def _table_columns(conn) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "AND attgenerated = ''",
        [TABLE],
    ).fetchall()
    return {name for (name,) in rows}


def seed_leads(dsn: str, plan: SeedPlan, *, workers: int = 2, log=print) -> dict:
    timings: dict[str, float] = {}
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        columns = _table_columns(conn)
        if columns != set(ROW_COLUMNS):
            raise RuntimeError(
                f"{TABLE} changed: the seeder writes {sorted(set(ROW_COLUMNS) - columns)} that do not exist and "
                f"misses {sorted(columns - set(ROW_COLUMNS))}; update bench/seed.py"
            )
        indexes = conn.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY i.relname",
            [TABLE],
        ).fetchall()
        foreign_keys = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND "
            "contype = 'f' ORDER BY conname",
            [TABLE],
        ).fetchall()
        t = time.perf_counter()
        plan.plan_duplicates()
        timings["plan_s"] = time.perf_counter() - t
        log(f"  dropping {len(indexes)} indexes and {len(foreign_keys)} foreign keys for the load")
        for name, _ in foreign_keys:
            conn.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        try:
            t = time.perf_counter()
            context = multiprocessing.get_context("fork")
            processes = [
                context.Process(target=_copy_worker, args=(dsn, plan, w, workers), daemon=True) for w in range(workers)
            ]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            if any(p.exitcode for p in processes):
                raise RuntimeError("a COPY worker failed (see its traceback above)")
            timings["copy_s"] = time.perf_counter() - t
            log(f"  COPY {plan.count:,} rows: {timings['copy_s']:.1f} s ({plan.count / timings['copy_s']:,.0f} rows/s)")
        finally:
            # Statistics first: without them the foreign key checks below are planned as if the table were empty.
            conn.execute(f"ANALYZE {TABLE}")
            t = time.perf_counter()
            _build_indexes(dsn, [d for _, d in indexes])
            timings["indexes_s"] = time.perf_counter() - t
            t = time.perf_counter()
            for name, definition in foreign_keys:
                conn.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
            timings["foreign_keys_s"] = time.perf_counter() - t
            log(
                f"  indexes rebuilt: {timings['indexes_s']:.1f} s; foreign keys validated: {timings['foreign_keys_s']:.1f} s"
            )
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), (SELECT max(id) FROM {TABLE}))")  # noqa: S608
        t = time.perf_counter()
        conn.execute(f"VACUUM (ANALYZE) {TABLE}")
        conn.execute("ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - t
        log(f"  VACUUM ANALYZE: {timings['vacuum_analyze_s']:.1f} s")
        size = conn.execute(
            f"SELECT pg_size_pretty(pg_table_size('{TABLE}')), pg_size_pretty(pg_indexes_size('{TABLE}'))"
        ).fetchone()
    timings["total_s"] = time.perf_counter() - began
    return {
        "rows": plan.count,
        "duplicates": len(plan.duplicates),
        "workers": workers,
        **{k: round(v, 2) for k, v in timings.items()},
        "rows_per_s_copy": round(plan.count / timings["copy_s"]),
        "rows_per_s_total": round(plan.count / timings["total_s"]),
        "table_size": size[0],
        "indexes_size": size[1],
    }


def _build_indexes(dsn: str, definitions: list[str]) -> None:
    """Two sessions build the indexes side by side (the trigram index alone takes about as long as the rest)."""
    ordered = sorted(definitions, key=lambda d: ("gin_trgm_ops" not in d, "gin" not in d.lower()))
    queues: list[list[str]] = [[], []]
    for n, definition in enumerate(ordered):
        queues[0 if n == 0 else 1].append(definition)
    errors: list[BaseException] = []

    def build(queue: list[str]) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SET maintenance_work_mem = '1GB'")
                for definition in queue:
                    conn.execute(definition)
        except BaseException as error:  # re-raised below, in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=build, args=(q,)) for q in queues if q]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def now_utc() -> datetime:
    return datetime.now(UTC)
