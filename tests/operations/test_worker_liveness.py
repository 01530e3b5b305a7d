"""A real Celery worker (a thread of this process, on a queue of its own) beats, answers pings, runs beat's tick
and logs with its task id and the id of the request that queued the task."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from leadflow.celery import app
from leadflow.logs import ContextFilter, JsonFormatter, request_id_var
from leadflow.operations.health import workers_check
from leadflow.operations.heartbeats import beat_last_tick, worker_heartbeats
from leadflow.tasks import record_beat_tick
from tests.test_celery_worker import _forget_queue, _reset_amqp_caches, _wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@app.task(name="tests.operations.log_inside_a_task")
def log_inside_a_task() -> None:
    logging.getLogger("tests.worker").info("inside the task")


@pytest.fixture
def worker_queue(settings):
    queue = f"leadflow-test-{uuid.uuid4().hex}"
    overrides = {
        "task_always_eager": False,
        "task_default_queue": queue,
        "task_default_exchange": queue,
        "task_default_routing_key": queue,
        "worker_hijack_root_logger": False,
    }
    saved = {name: app.conf[name] for name in overrides}
    app.conf.update(overrides)
    settings.CELERY_TASK_ALWAYS_EAGER = False  # what the health page reads to know workers are expected
    _reset_amqp_caches()
    try:
        yield queue
    finally:
        app.conf.update(saved)
        _reset_amqp_caches()
        _forget_queue(queue)


def test_a_worker_beats_answers_pings_and_is_forgotten_when_it_stops(worker_queue):
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=20) as worker:
        assert _wait_for(lambda: any(beat["hostname"] == worker.hostname for beat in worker_heartbeats()))
        beat = next(beat for beat in worker_heartbeats() if beat["hostname"] == worker.hostname)
        assert beat["alive"] and beat["age_s"] < 15
        assert worker_queue in beat["queues"]
        check = workers_check()
        row = next(row for row in check.rows if row["hostname"] == worker.hostname)
        assert row["answered_ping"] is True, check.details
        assert check.status == "ok", (check.summary, check.rows)
        assert check.summary == "1 alive"
    assert all(beat["hostname"] != worker.hostname for beat in worker_heartbeats())
    after = workers_check()
    assert after.status == "error" and "No worker is alive" in after.summary


def test_beats_tick_is_run_by_a_worker(worker_queue):
    assert beat_last_tick() is None
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=20):
        queued_at = time.time()
        record_beat_tick.delay()
        assert _wait_for(lambda: beat_last_tick() is not None)
    assert beat_last_tick() >= queued_at


def test_task_logs_name_the_task_and_the_request_that_queued_it(worker_queue):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.worker")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=20):
            token = request_id_var.set("req-that-queued-0001")
            try:
                result = log_inside_a_task.delay()
            finally:
                request_id_var.reset(token)
            assert _wait_for(lambda: "inside the task" in stream.getvalue())
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["task_id"] == result.id
    assert line["task_name"] == "tests.operations.log_inside_a_task"
    assert line["request_id"] == "req-that-queued-0001"
