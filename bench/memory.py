"""Memory over a long run: what each server process holds, sampled every few seconds, and whether it stays flat.

Sampled: the resident memory (``VmRSS`` in ``/proc/<pid>/status``) of every process in the process groups the
benchmark started (gunicorn's master and workers, the Celery worker and its pool, daphne, beat); PostgreSQL's
backends connected to the bench database, each and in total; and Redis's ``used_memory``.

A PostgreSQL backend's VmRSS counts every page of ``shared_buffers`` it has touched, so it rises for minutes as the
backends read more of the (shared, fixed-size) buffer pool and says nothing about a leak; its private memory
(``RssAnon``: catalog and plan caches, sorts) is what a leaking backend would grow. Each backend's private memory is
judged on its own; the totals (private and VmRSS) are shown. Totals are not judged because the number of backends
changes: a gunicorn thread opens its connection when it first serves a request, which can be minutes into a run,
and the total then steps up by a whole backend with nothing leaking.

Every series is judged from its own first sample plus the warm-up, so a process or backend that starts late gets
the same warm-up as the others (a fresh backend fills its caches in its first minutes).

"Flat" after a warm-up: the least-squares slope of the series is below a bound (MB a minute) and its range
(max - min) is below another. ``flatness()`` is pure and tested (tests/test_bench_memory.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
# The benchmark's own connections to the bench database say so, and are not counted as LeadFlow's backends.
BENCH_APPLICATION_NAME = "leadflow-bench-load"


# Flatness -------------------------------------------------------------------------------------------------------------


def least_squares_slope(points: list[tuple[float, float]]) -> float:
    """The slope of the least-squares line through ``points`` (x, y); needs two distinct x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread_x = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread_x:
        raise ValueError("a slope needs at least two distinct x values")
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread_x


def flatness(
    points: list[tuple[float, float]],
    *,
    warmup_s: float,
    until_s: float | None = None,
    max_slope_mb_per_min: float,
    max_range_mb: float,
    min_samples: int = 6,
) -> dict:
    """Is a memory series flat? ``points`` are (seconds since the start, bytes); only those from ``warmup_s`` to
    ``until_s`` count. ``flat`` is None (not judged) with fewer than ``min_samples`` of them: a verdict on three
    points would be noise, so the caller must treat None as "not shown flat"."""
    judged = sorted((t, value) for t, value in points if t >= warmup_s and (until_s is None or t <= until_s))
    result: dict = {"samples": len(judged), "max_slope_mb_per_min": max_slope_mb_per_min, "max_range_mb": max_range_mb}
    if len(judged) < min_samples:
        return result | {"flat": None, "why": f"{len(judged)} samples after the warm-up, {min_samples} needed"}
    values = [value for _, value in judged]
    slope = least_squares_slope([(t / 60, value / MB) for t, value in judged])
    spread = (max(values) - min(values)) / MB
    result |= {
        "first_mb": round(values[0] / MB, 1),
        "last_mb": round(values[-1] / MB, 1),
        "min_mb": round(min(values) / MB, 1),
        "max_mb": round(max(values) / MB, 1),
        "slope_mb_per_min": round(slope, 3),
        "range_mb": round(spread, 1),
        "flat": slope < max_slope_mb_per_min and spread < max_range_mb,
    }
    return result


# Reading /proc -----------------------------------------------------------------------------------------------------


def proc_memory(pid: int) -> dict[str, int] | None:
    """VmRSS and RssAnon of a process, in bytes (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            found[name] = int(value.split()[0]) * 1024
    return found if "VmRSS" in found else None


def group_pids(pgid: int) -> list[int]:
    """Every live process of a process group (the benchmark starts each server in a session of its own)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
            pids.append(int(entry.name))
    return sorted(pids)


# Sampling -------------------------------------------------------------------------------------------------------------


# How a process is named in its group: (group, is the group's leader) → suffix.
ROLES = {
    ("gunicorn", True): " master",
    ("gunicorn", False): " worker",
    ("celery worker", True): " main",
    ("celery worker", False): " pool process",
}


@dataclass
class Series:
    label: str
    judged: bool = True
    points: list[tuple[float, float]] = field(default_factory=list)  # (seconds since the start, bytes)


class MemorySampler(threading.Thread):
    """Samples every ``every`` seconds, in a thread of the benchmark's process, until ``stop()``.

    ``groups`` maps a label (``gunicorn``) to the process group id of what the benchmark started; a group's leader
    is its ``master``/``main`` process, the others its workers. A process seen once and gone later is recorded in
    ``exited`` (a worker that crashed or was replaced), one that appears after the first sample in ``appeared``."""

    def __init__(self, *, groups: dict[str, int], dsn: str, database: str, redis_url: str, every: float):
        super().__init__(daemon=True, name="memory sampler")
        self.groups, self.dsn, self.database, self.redis_url, self.every = groups, dsn, database, redis_url, every
        self.series: dict[str, Series] = {}
        self.backends: list[tuple[float, int]] = []  # how many PostgreSQL backends were summed
        self.bench_db_keys: list[tuple[float, int]] = []
        self.exited: list[str] = []
        self.appeared: list[str] = []
        self.started_at = time.perf_counter()
        self.error = ""
        self._stopping = threading.Event()
        self._known: dict[int, str] = {}

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)

    def _add(self, label: str, t: float, value: float, *, judged: bool = True) -> None:
        self.series.setdefault(label, Series(label, judged)).points.append((t, value))

    def run(self) -> None:
        import psycopg
        import redis

        try:
            with psycopg.connect(self.dsn, autocommit=True, application_name=BENCH_APPLICATION_NAME) as conn:
                cache = redis.Redis.from_url(self.redis_url)
                first = True
                while True:
                    self.sample(conn, cache, first=first)
                    first = False
                    if self._stopping.wait(self.every):
                        return
        except Exception as error:  # recorded and reported: a sampler that fails must not hang the run
            self.error = f"{type(error).__name__}: {error}"

    def sample(self, conn, cache, *, first: bool) -> None:
        t = time.perf_counter() - self.started_at
        seen: set[int] = set()
        for group, pgid in self.groups.items():
            workers = [pid for pid in group_pids(pgid) if pid != pgid]
            for pid in [pgid, *workers]:
                memory = proc_memory(pid)
                if memory is None:
                    continue
                label = f"{group}{ROLES.get((group, pid == pgid), '')} (pid {pid})"
                if pid not in self._known and not first:
                    self.appeared.append(label)
                self._known[pid] = label
                seen.add(pid)
                self._add(label, t, memory["VmRSS"])
        self.exited += [label for pid, label in self._known.items() if pid not in seen and label not in self.exited]
        backends = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                "AND application_name <> %s",
                (self.database, BENCH_APPLICATION_NAME),
            )
        ]
        memories = {pid: m for pid, m in ((pid, proc_memory(pid)) for pid in backends) if m is not None}
        for pid, memory in memories.items():
            self._add(f"PostgreSQL backend (pid {pid}), private (RssAnon)", t, memory.get("RssAnon", 0))
        self._add(
            "PostgreSQL backends, private (RssAnon), total",
            t,
            sum(m.get("RssAnon", 0) for m in memories.values()),
            judged=False,
        )
        self._add("PostgreSQL backends, VmRSS, total", t, sum(m["VmRSS"] for m in memories.values()), judged=False)
        self.backends.append((t, len(memories)))
        with contextlib.suppress(Exception):
            self._add("Redis used_memory (whole server)", t, int(cache.info("memory")["used_memory"]))
            self.bench_db_keys.append((t, int(cache.dbsize())))

    def verdicts(self, *, warmup_s: float, until_s: float, max_slope_mb_per_min: float, max_range_mb: float) -> dict:
        """Each series' flatness from its own first sample plus ``warmup_s``. A backend that connected too late to
        leave enough samples after its warm-up is shown, not judged (a late server process fails anyway: see
        ``appeared``); any other series with too few samples is judged not flat."""
        first_sample = min((series.points[0][0] for series in self.series.values() if series.points), default=0.0)
        verdicts = {}
        for label, series in self.series.items():
            verdict = {"judged": series.judged} | flatness(
                series.points,
                warmup_s=series.points[0][0] + warmup_s,
                until_s=until_s,
                max_slope_mb_per_min=max_slope_mb_per_min,
                max_range_mb=max_range_mb,
            )
            if (
                verdict["flat"] is None
                and label.startswith("PostgreSQL backend (")
                and series.points[0][0] > first_sample
            ):
                verdict |= {"judged": False, "why": f"connected at {series.points[0][0]:.0f} s: " + verdict["why"]}
            verdicts[label] = verdict
        return verdicts
