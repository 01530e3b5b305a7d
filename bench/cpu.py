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


def snapshot(groups: dict[str, int]) -> dict[int, tuple[str, float]]:
    """CPU seconds so far per process, with its component: the process groups we started (name → pgid),
    PostgreSQL, Redis and this process (the load generator)."""
    me = os.getpid()
    by_pgid = {pgid: name for name, pgid in groups.items()}
    seen: dict[int, tuple[str, float]] = {}
    for pid, comm, pgid, ticks in _processes():
        if pid == me:
            name = "load generator"
        elif pgid in by_pgid:
            name = by_pgid[pgid]
        elif comm == "postgres":
            name = "postgres"
        elif comm.startswith("redis-server"):
            name = "redis"
        else:
            continue
        seen[pid] = (name, ticks / TICK)
    return seen


def usage(before: dict, after: dict, *, seconds: float, requests: int) -> dict:
    """CPU milliseconds per request by component and the cores busy on average (2.0 = both cores, all the time).

    Per process: what a process that ended during the run (a database connection closed at CONN_MAX_AGE) spent
    since the first snapshot is unknown and left out, so the figures can only err low.
    """
    spent: dict[str, float] = {}
    for pid, (name, seconds_now) in after.items():
        spent[name] = spent.get(name, 0.0) + seconds_now - before.get(pid, (name, 0.0))[1]
    total = sum(spent.values())
    return {
        "cores_busy": round(total / seconds, 2) if seconds else None,
        "cpu_ms_per_request": {
            name: round(value / requests * 1000, 2) for name, value in sorted(spent.items()) if requests and value > 0
        }
        | ({"total": round(total / requests * 1000, 2)} if requests else {}),
    }


def stolen_seconds() -> float:
    """CPU time the hypervisor gave to other guests while this VM's vCPUs wanted it (``steal`` in /proc/stat,
    summed over the vCPUs), since boot. On a shared VM a burst of it stops every process at once."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    # cpu user nice system idle iowait irq softirq steal ...
    return int(fields[8]) / TICK if len(fields) > 8 else 0.0
