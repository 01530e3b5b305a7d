"""The load generator: an asyncio httpx client on loopback, in its own process (not the server's).

``closed_loop`` keeps N requests in flight (saturation, latency under a steady load); ``open_loop`` sends at a fixed
rate whatever the server does and measures each request from the moment it was due, so a slow server cannot hide
its queueing (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Request:
    method: str
    path: str
    key: str
    label: str = ""
    body: Any = None
    capture: str = ""


@dataclass
class Sample:
    label: str
    ms: float  # from when the request was due (open loop) or sent (closed loop) to the full response
    status: int
    sql: int
    ok: bool
    service_ms: float = 0.0
    detail: str = ""
    due: float = 0.0  # seconds since the run began (open loop)


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    def errors(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(samples: list[Sample], seconds: float | None = None) -> dict:
    ms = [s.ms for s in samples if s.ok]
    sql = sorted(s.sql for s in samples if s.ok)
    summary = {
        "requests": len(samples),
        "errors": sum(not s.ok for s in samples),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else math.nan,
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else math.nan,
        "sql_per_request": {"min": sql[0], "median": sql[len(sql) // 2], "max": sql[-1]} if sql else {},
    }
    if seconds:
        summary["requests_per_s"] = round(len(ms) / seconds, 1)
    return summary


def _client(base_url: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=60,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"Accept": "application/json"},
    )


async def _send(client: httpx.AsyncClient, request: Request, accept: Callable[[httpx.Response], bool]):
    headers = {"X-API-Key": request.key}
    if request.capture:
        headers["X-Bench-Capture"] = request.capture
    try:
        response = await client.request(request.method, request.path, headers=headers, json=request.body)
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"
    return response, ""


def _sample(request: Request, response, error: str, started: float, sent: float, accept) -> Sample:
    done = time.perf_counter()
    if response is None:
        return Sample(request.label, (done - started) * 1000, 0, 0, False, (done - sent) * 1000, error)
    ok = accept(response)
    return Sample(
        request.label,
        (done - started) * 1000,
        response.status_code,
        int(response.headers.get("X-Bench-SQL-Count", 0)),
        ok,
        (done - sent) * 1000,
        "" if ok else response.text[:300],
    )


def default_accept(response: httpx.Response) -> bool:
    return response.status_code == 200


async def closed_loop(
    base_url: str,
    make: Callable[[int], Request],
    *,
    concurrency: int,
    seconds: float,
    accept: Callable[[httpx.Response], bool] = default_accept,
) -> Run:
    counter = itertools.count()
    run = Run()
    async with _client(base_url, concurrency) as client:
        began = time.perf_counter()
        deadline = began + seconds

        async def worker():
            while time.perf_counter() < deadline:
                request = make(next(counter))
                started = time.perf_counter()
                response, error = await _send(client, request, accept)
                run.samples.append(_sample(request, response, error, started, started, accept))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - began
    return run


async def open_loop(
    base_url: str,
    make: Callable[[int], Request],
    *,
    rate: float,
    seconds: float,
    connections: int = 256,
    accept: Callable[[httpx.Response], bool] = default_accept,
) -> Run:
    run = Run()
    total = int(rate * seconds)
    async with _client(base_url, connections) as client:
        began = time.perf_counter() + 0.05

        async def one(n: int, due: float):
            request = make(n)
            sent = time.perf_counter()
            response, error = await _send(client, request, accept)
            sample = _sample(request, response, error, due, sent, accept)
            sample.due = due - began
            run.samples.append(sample)

        tasks = []
        for n in range(total):
            due = began + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, due)))
        await asyncio.gather(*tasks)
        run.seconds = time.perf_counter() - began
    return run


async def cursor_chains(
    base_url: str,
    make_first: Callable[[int], Request],
    *,
    depth: int,
    concurrency: int,
    seconds: float,
) -> Run:
    """Each worker opens a list and follows ``next`` ``depth`` times; every page is one sample (labelled by depth)."""
    counter = itertools.count()
    run = Run()
    async with _client(base_url, concurrency) as client:
        began = time.perf_counter()
        deadline = began + seconds

        async def worker():
            while time.perf_counter() < deadline:
                request = make_first(next(counter))
                base_label = request.label
                for page in range(1, depth + 1):
                    request.label = f"{base_label}|page={page}"
                    started = time.perf_counter()
                    response, error = await _send(client, request, default_accept)
                    sample = _sample(request, response, error, started, started, default_accept)
                    run.samples.append(sample)
                    if not sample.ok:
                        break
                    next_url = response.json().get("next")
                    if not next_url:
                        break
                    request = Request("GET", httpx.URL(next_url).raw_path.decode(), request.key, base_label)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - began
    return run


async def one_request(base_url: str, request: Request) -> tuple[int, dict | list | None, int]:
    async with _client(base_url, 1) as client:
        response, error = await _send(client, request, default_accept)
        if response is None:
            raise RuntimeError(error)
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body, int(response.headers.get("X-Bench-SQL-Count", 0))
