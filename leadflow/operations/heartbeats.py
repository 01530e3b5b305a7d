"""Proof of life from Celery workers and beat, kept in Redis.

Each worker writes its own heartbeat every ``HEARTBEAT_INTERVAL_S`` seconds from its timer (a bootstep, so it
beats while idle and while its pool is busy), into one Redis hash keyed by hostname; a clean shutdown removes it.
Beat queues ``record_beat_tick`` every 30 seconds and whichever worker runs it stamps the time, so the tick's age
says that beat, the broker and at least one worker all work. Nothing here reads the database.
"""

from __future__ import annotations

import json
import logging
import os
import time

from celery import bootsteps

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10
# A worker whose heartbeat is older than this is reported missing (three beats lost).
HEARTBEAT_STALE_AFTER_S = 3 * HEARTBEAT_INTERVAL_S + 5
# Heartbeats of workers gone for this long (killed, never shut down cleanly) are dropped from the hash.
HEARTBEAT_FORGET_AFTER_S = 24 * 60 * 60
BEAT_TICK_INTERVAL_S = 30


def _redis():
    from leadflow.redis import redis_client

    return redis_client()


def _heartbeats_key() -> str:
    from leadflow.redis import redis_key

    return redis_key("operations:worker-heartbeats")


def _beat_tick_key() -> str:
    from leadflow.redis import redis_key

    return redis_key("operations:beat-tick")


def worker_heartbeat_record(*, hostname: str, pid: int, concurrency: int, queues: list[str], started_at: float) -> None:
    client = _redis()
    if client is None:
        return
    beat = {"pid": pid, "concurrency": concurrency, "queues": queues, "started_at": started_at, "at": time.time()}
    client.hset(_heartbeats_key(), hostname, json.dumps(beat))


def worker_heartbeat_forget(*, hostname: str) -> None:
    client = _redis()
    if client is not None:
        client.hdel(_heartbeats_key(), hostname)


def worker_heartbeats(*, now: float | None = None) -> list[dict]:
    """Every worker that beat in the last day, newest first, with ``age_s`` and ``alive``. Older ones are dropped."""
    client = _redis()
    if client is None:
        return []
    now = now or time.time()
    found, forgotten = [], []
    for hostname, raw in client.hgetall(_heartbeats_key()).items():
        hostname = hostname.decode()
        try:
            beat = json.loads(raw)
        except ValueError:
            forgotten.append(hostname)
            continue
        age = now - float(beat.get("at", 0))
        if age > HEARTBEAT_FORGET_AFTER_S:
            forgotten.append(hostname)
            continue
        found.append({**beat, "hostname": hostname, "age_s": round(age, 1), "alive": age <= HEARTBEAT_STALE_AFTER_S})
    if forgotten:
        client.hdel(_heartbeats_key(), *forgotten)
    return sorted(found, key=lambda beat: beat["age_s"])


def beat_tick_record() -> float:
    now = time.time()
    client = _redis()
    if client is not None:
        client.set(_beat_tick_key(), repr(now), ex=7 * 24 * 60 * 60)
    return now


def beat_last_tick() -> float | None:
    client = _redis()
    if client is None:
        return None
    raw = client.get(_beat_tick_key())
    return float(raw) if raw else None


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A worker bootstep: beat on start, then every ``HEARTBEAT_INTERVAL_S`` on the worker's timer; forget on stop."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None
        self.started_at = time.time()

    def _beat(self, worker) -> None:
        try:
            worker_heartbeat_record(
                hostname=worker.hostname,
                pid=os.getpid(),
                concurrency=worker.concurrency or 0,
                queues=sorted(worker.app.amqp.queues.keys()),
                started_at=self.started_at,
            )
        except Exception:  # Redis down: the page will say so; the worker keeps working
            logger.warning("worker heartbeat not written", exc_info=True)

    def start(self, worker) -> None:
        self._beat(worker)
        self.timer_entry = worker.timer.call_repeatedly(HEARTBEAT_INTERVAL_S, self._beat, (worker,), priority=10)

    def stop(self, worker) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        try:
            worker_heartbeat_forget(hostname=worker.hostname)
        except Exception:
            logger.warning("worker heartbeat not removed at shutdown", exc_info=True)

    # A cold shutdown (and Celery's test worker) terminates steps instead of stopping them.
    terminate = stop
