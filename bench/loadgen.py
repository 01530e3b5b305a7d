"""The load generator: a lean asyncio HTTP/1.1 client on loopback, in its own process (not the server's).

It shares the 2 cores with what it measures, so it is kept cheap: persistent keep-alive connections and a
hand-rolled request writer and response reader (httpx spent about 2 ms of CPU a request, a fifth of an ingest
request's whole budget; this spends a fraction of that, for the ingest and the minimal endpoint alike).

``closed_loop`` keeps N requests in flight (saturation, latency under a steady load); ``open_loop`` sends at a fixed
rate whatever the server does and measures each request from the moment it was due, so a slow server cannot hide
its queueing (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import urllib.parse
from collections.abc import Awaitable, Callable
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


class Headers(dict):
    """Response headers by lower-case name."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


class Response:
    def __init__(self, status_code: int, headers: Headers, content: bytes):
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class TransportError(Exception):
    pass


class LeanClient:
    """Keep-alive HTTP/1.1 connections to one host, at most ``connections`` of them, reused in turn."""

    def __init__(self, base_url: str, connections: int):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.host_header = parts.netloc.encode()
        self.limit = asyncio.Semaphore(connections)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.stale_retries = 0

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()

    async def request(self, method: str, path: str, *, headers: dict[str, str], json_body=None) -> Response:
        if json_body is None:
            return await self.request_raw(method, path, headers=headers)
        headers = {**headers, "Content-Type": "application/json"}
        return await self.request_raw(method, path, headers=headers, body=json.dumps(json_body).encode())

    async def request_raw(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None = None):
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header.decode()}", "Accept: application/json"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        async with self.limit:
            reader, writer, reused = await self._connection()
            try:
                writer.write(payload)
                response, keep = await self._read(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                writer.close()
                if not (reused and _closed_before_answering(error)):
                    raise TransportError(f"{type(error).__name__}: {error}") from error
                # The server closed this idle keep-alive connection as we reused it (gunicorn's keepalive timeout
                # racing our request): nothing was answered, so the request is sent again on a fresh connection,
                # as browsers and HTTP libraries do. Counted, so a bench can say how often.
                self.stale_retries += 1
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(payload)
                    response, keep = await self._read(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError) as retry_error:
                    writer.close()
                    raise TransportError(f"{type(retry_error).__name__}: {retry_error}") from retry_error
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return response

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self.idle:
            reader, writer = self.idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()  # the server already said goodbye on this one
                continue
            return reader, writer, True
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[Response, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = Headers()
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            content = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if not size:
                    break
                content += chunk[:-2]
        else:
            content = await reader.readexactly(int(headers.get("content-length", "0")))
        keep = headers.get("connection", "").lower() != "close"
        return Response(status, headers, content), keep


def _closed_before_answering(error: BaseException) -> bool:
    """The connection was gone before a single byte of an answer came back."""
    if isinstance(error, asyncio.IncompleteReadError):
        return not error.partial
    return isinstance(error, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))


def _client(base_url: str, connections: int) -> LeanClient:
    return LeanClient(base_url, connections)


async def _send(client: LeanClient, request: Request, accept: Callable[[Response], bool]):
    headers = {"X-API-Key": request.key}
    if request.capture:
        headers["X-Bench-Capture"] = request.capture
    try:
        response = await client.request(request.method, request.path, headers=headers, json_body=request.body)
    except TransportError as error:
        return None, str(error)
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


def default_accept(response: Response) -> bool:
    return response.status_code == 200


async def closed_loop(
    base_url: str,
    make: Callable[[int], Request],
    *,
    concurrency: int,
    seconds: float,
    accept: Callable[[Response], bool] = default_accept,
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
    accept: Callable[[Response], bool] = default_accept,
) -> Run:
    run = Run()
    async with _client(base_url, connections) as client:
        began = time.perf_counter()

        async def one(n: int, due: float):
            request = make(n)
            sent = time.perf_counter()
            response, error = await _send(client, request, accept)
            sample = _sample(request, response, error, due, sent, accept)
            sample.due = due - began
            run.samples.append(sample)

        await paced(range(int(rate * seconds)), rate, one)
        run.seconds = time.perf_counter() - began
    return run


async def paced(numbers: range, rate: float, one: Callable[[int, float], Awaitable[None]]) -> None:
    """Open loop: ``one(n, due)`` is started when number n is due, (n - first) / rate after the start (plus 50 ms to
    set up), whether or not the earlier ones have been answered; each measures from its ``due`` (perf_counter)."""
    began = time.perf_counter() + 0.05
    tasks = []
    for n in numbers:
        due = began + (n - numbers.start) / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)


def windows(points: list[tuple[float, float]], *, seconds: float) -> list[dict]:
    """Latency per window of ``seconds``: ``points`` are (when, in seconds since the start; milliseconds); windows
    with no point are left out. Shows whether the slow requests are spread or bunched, and drift over a long run."""
    by_window: dict[int, list[float]] = {}
    for at, ms in points:
        by_window.setdefault(int(at // seconds), []).append(ms)
    return [
        {
            "window": n,
            "requests": len(values),
            "p50_ms": round(percentile(values, 50), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1),
        }
        for n, values in sorted(by_window.items())
    ]


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
