"""The soak benchmark's pure helpers: is a memory series flat, latency by window, and its load plan."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from bench.distribution import lead_plan
from bench.loadgen import LeanClient, TransportError, windows
from bench.memory import MB, flatness, least_squares_slope

BOUNDS = {"max_slope_mb_per_min": 1.0, "max_range_mb": 16.0}


def series(minutes: int, *, start_mb: float, mb_per_min: float, noise_mb: float = 0.0, every_s: int = 10):
    rng = random.Random(7)
    return [
        (t, (start_mb + mb_per_min * t / 60 + rng.uniform(-noise_mb, noise_mb)) * MB)
        for t in range(0, minutes * 60 + 1, every_s)
    ]


def test_least_squares_slope_of_a_line_and_of_scattered_points():
    assert least_squares_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    # Up and back down again, symmetrically: no slope, however large the swing.
    assert least_squares_slope([(0, 0), (1, 2), (2, 2), (3, 0)]) == pytest.approx(0.0)
    # Alternating samples that end high lean upwards a little: 4 / 42.
    assert least_squares_slope([(x, 2 * (x % 2)) for x in range(8)]) == pytest.approx(4 / 42)
    with pytest.raises(ValueError):
        least_squares_slope([(1, 1), (1, 2)])


def test_a_steady_process_with_noise_is_flat():
    verdict = flatness(series(10, start_mb=120, mb_per_min=0.0, noise_mb=2.0), warmup_s=120, **BOUNDS)
    assert verdict["flat"] is True
    assert verdict["samples"] == 49  # 120 s … 600 s, every 10 s
    assert abs(verdict["slope_mb_per_min"]) < 0.3
    assert verdict["range_mb"] <= 4.0


def test_a_slow_leak_fails_on_its_slope():
    verdict = flatness(series(10, start_mb=120, mb_per_min=1.5), warmup_s=120, **BOUNDS)
    assert verdict["flat"] is False
    assert verdict["slope_mb_per_min"] == pytest.approx(1.5, abs=1e-6)
    assert verdict["range_mb"] == pytest.approx(12.0, abs=0.1)  # within its bound: the slope alone fails it


def test_a_jump_fails_on_its_range_even_with_a_small_slope():
    points = [(t, 100 * MB if t < 590 else 130 * MB) for t in range(0, 601, 10)]
    verdict = flatness(points, warmup_s=120, **BOUNDS)
    assert verdict["range_mb"] == pytest.approx(30.0)
    assert verdict["flat"] is False


def test_the_warm_up_and_the_end_of_the_window_are_left_out():
    # Fast growth while warming up, a drop after the load ended: neither is judged.
    points = [(t, (50 + t) * MB) for t in range(0, 120, 10)]
    points += [(t, 170 * MB) for t in range(120, 601, 10)]
    points += [(t, 60 * MB) for t in range(610, 700, 10)]
    verdict = flatness(points, warmup_s=120, until_s=600, **BOUNDS)
    assert verdict["flat"] is True
    assert (verdict["first_mb"], verdict["last_mb"], verdict["range_mb"]) == (170.0, 170.0, 0.0)


def test_too_few_samples_are_not_judged():
    verdict = flatness([(t, 100 * MB) for t in (130, 140, 150)], warmup_s=120, **BOUNDS)
    assert verdict["flat"] is None
    assert "3 samples" in verdict["why"]


def test_latency_windows_by_minute():
    points = [(5.0, 10.0), (30.0, 20.0), (59.9, 30.0), (60.0, 100.0), (185.0, 7.0)]
    assert windows(points, seconds=60) == [
        {"window": 0, "requests": 3, "p50_ms": 20.0, "p99_ms": 30.0, "max_ms": 30.0},
        {"window": 1, "requests": 1, "p50_ms": 100.0, "p99_ms": 100.0, "max_ms": 100.0},
        {"window": 3, "requests": 1, "p50_ms": 7.0, "p99_ms": 7.0, "max_ms": 7.0},
    ]


def test_duplicates_repeat_a_lead_posted_at_least_the_gap_earlier():
    plan = lead_plan(1, count=3000, base=0, duplicate_share=0.05, test_share=0.01, campaigns=[11, 12], min_gap=200)
    position = {}
    duplicates = 0
    for i, (kind, body, n) in enumerate(plan):
        if kind in ("original", "test"):
            position[n] = i
            assert body["campaign"] == (11, 12)[n % 2]
            continue
        duplicates += 1
        assert i - position[n] > 200
        if kind == "same_person":
            assert body["external_id"] != f"BENCH-1-{n}"
        else:
            assert body["external_id"] == f"BENCH-1-{n}"
    assert 100 < duplicates < 200  # about 5 % of the requests after the first 200


def test_without_a_gap_the_plan_is_what_the_distribution_benchmark_always_posted():
    # Client 0's first requests, as bench-distribution's earlier runs posted them (same seed, same draws).
    plan = lead_plan(0, count=400, base=0, duplicate_share=0.05, test_share=0.01, campaigns=[1, 2, 3, 4, 5])
    rng = random.Random(0)
    mine = []
    for i, (kind, _body, n) in enumerate(plan):
        if mine and rng.random() < 0.05:
            expected_n, _ = rng.choice(mine)
            rng.random()
            assert kind in ("redelivery", "same_person") and n == expected_n
            continue
        rng.random()
        assert kind in ("original", "test") and n == i
        mine.append((n, None))


@contextlib.asynccontextmanager
async def _client_of(handler):
    """A one-connection load-generator client of a local server that answers with ``handler``."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        async with LeanClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1) as client:
            yield client
    finally:
        server.close()
        await server.wait_closed()


async def _serve_once_per_connection(reader, writer):
    """Answers the first request of a connection, advertising keep-alive, and closes the connection without an
    answer when the next request arrives: a keep-alive timeout that fires just as the client reuses it."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def test_the_load_generator_resends_a_request_the_server_closed_its_idle_connection_on():
    async with _client_of(_serve_once_per_connection) as client:
        for _ in range(3):
            response = await client.request_raw("GET", "/", headers={})
            assert response.status_code == 200
        # The second and third requests were each sent on a connection closed under them, then again.
        assert client.stale_retries == 2


async def _never_answer(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def test_a_fresh_connection_closed_without_an_answer_is_an_error_not_a_retry():
    async with _client_of(_never_answer) as client:
        with pytest.raises(TransportError):
            await client.request_raw("GET", "/", headers={})
        assert client.stale_retries == 0


def _sampler_with(series_by_label: dict):
    from bench.memory import MemorySampler, Series

    sampler = MemorySampler(groups={}, dsn="", database="", redis_url="", every=10)
    for label, (points, judged) in series_by_label.items():
        sampler.series[label] = Series(label, judged, points)
    return sampler


def test_each_series_gets_its_own_warm_up_and_a_late_backend_with_few_samples_is_only_shown():
    steady = series(10, start_mb=150, mb_per_min=0.0, noise_mb=0.5)
    # A backend that connected at minute 4 and filled its caches in its first minute: flat after its own warm-up.
    late = [(t, (60 + (20 if t >= 300 else (t - 240) / 60 * 20)) * MB) for t in range(240, 601, 10)]
    too_late = [(t, 60 * MB) for t in range(540, 601, 10)]
    sampler = _sampler_with(
        {
            "gunicorn worker (pid 1)": (steady, True),
            "PostgreSQL backend (pid 2), private (RssAnon)": (late, True),
            "PostgreSQL backend (pid 3), private (RssAnon)": (too_late, True),
        }
    )
    verdicts = sampler.verdicts(warmup_s=120, until_s=600, **BOUNDS)
    assert verdicts["gunicorn worker (pid 1)"]["flat"] is True
    late_verdict = verdicts["PostgreSQL backend (pid 2), private (RssAnon)"]
    assert late_verdict["judged"] and late_verdict["flat"] is True
    # Judged from the start of the run, the same backend's first minute would read as a leak.
    from bench.memory import flatness

    assert flatness(late, warmup_s=120, until_s=600, **BOUNDS)["flat"] is False
    too_late_verdict = verdicts["PostgreSQL backend (pid 3), private (RssAnon)"]
    assert too_late_verdict["judged"] is False and "connected at 540 s" in too_late_verdict["why"]


def test_a_server_process_with_too_few_samples_is_not_shown_flat():
    sampler = _sampler_with({"daphne (pid 9)": ([(t, 100 * MB) for t in range(0, 121, 10)], True)})
    verdict = sampler.verdicts(warmup_s=120, until_s=600, **BOUNDS)["daphne (pid 9)"]
    assert verdict["judged"] and verdict["flat"] is None


@pytest.mark.django_db(transaction=True)
def test_the_autovacuum_stand_in_analyzes_and_vacuums_what_autovacuum_would():
    import psycopg
    from django.db import connection

    from bench.run import AutovacuumStandIn

    params = connection.get_connection_params()
    dsn = psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")}
    )
    # The writes come from a connection of their own: a backend's row counts reach the statistics system for
    # certain when it ends.
    with psycopg.connect(dsn, autocommit=True) as writer:
        writer.execute("DROP TABLE IF EXISTS bench_autovacuum_probe")
        writer.execute("CREATE TABLE bench_autovacuum_probe (id int)")
        writer.execute("INSERT INTO bench_autovacuum_probe SELECT generate_series(1, 1000)")
        writer.execute("DELETE FROM bench_autovacuum_probe WHERE id <= 500")
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            stand_in = AutovacuumStandIn(dsn)
            stand_in.pass_once(conn)
            assert stand_in.analyzed >= 1 and stand_in.vacuumed >= 1
            stats = conn.execute(
                "SELECT last_analyze IS NOT NULL, last_vacuum IS NOT NULL, n_mod_since_analyze "
                "FROM pg_stat_user_tables WHERE relname = 'bench_autovacuum_probe'"
            ).fetchone()
            assert stats == (True, True, 0)
        finally:
            conn.execute("DROP TABLE bench_autovacuum_probe")
