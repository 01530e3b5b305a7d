"""CPU time by component (from /proc), so a figure on 2 shared cores says which process used them."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _processes():
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # comm may contain spaces: the fields after the closing parenthesis are fixed
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pgid = int(fields[2])
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        yield int(entry.name), comm, pgid, ticks


def snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: the process groups we started (name → pgid), PostgreSQL, Redis and this process."""
    totals = dict.fromkeys(groups, 0.0) | {"postgres": 0.0, "redis": 0.0, "load generator": 0.0}
    me = os.getpid()
    by_pgid = {pgid: name for name, pgid in groups.items()}
    for pid, comm, pgid, ticks in _processes():
        seconds = ticks / TICK
        if pid == me:
            totals["load generator"] += seconds
        elif pgid in by_pgid:
            totals[by_pgid[pgid]] += seconds
        elif comm == "postgres":
            totals["postgres"] += seconds
        elif comm.startswith("redis-server"):
            totals["redis"] += seconds
    return totals


def usage(before: dict[str, float], after: dict[str, float], *, seconds: float, requests: int) -> dict:
    """CPU milliseconds per request by component and the cores busy on average (2.0 = both cores, all the time)."""
    spent = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    total = sum(spent.values())
    return {
        "cores_busy": round(total / seconds, 2) if seconds else None,
        "cpu_ms_per_request": {
            name: round(value / requests * 1000, 2) for name, value in spent.items() if requests and value > 0
        }
        | ({"total": round(total / requests * 1000, 2)} if requests else {}),
    }
