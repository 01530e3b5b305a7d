"""A real Celery worker (in a thread of this process) takes a task off the Redis broker and sends the email.

The tests elsewhere run tasks eagerly; this one proves the broker path: serialization, routing, the worker loading
rows in its own database connection. The worker consumes a queue named for this run only, so a stray worker on
the same Redis never steals the task.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_prerun
from django.core import mail

from accounts import tasks
from accounts.constants import Role
from leadflow.celery import app

from .conftest import member_of
from .factories import OrganizationFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Cached on app.amqp from the configuration they were first built with; dropped so the run's queue applies.
_AMQP_CACHES = ("queues", "default_queue", "router", "send_task_message", "default_exchange")


def _reset_amqp_caches() -> None:
    for name in _AMQP_CACHES:
        app.amqp.__dict__.pop(name, None)


@contextlib.contextmanager
def _run_queue():
    """Tasks sent inside go to a queue of this run's own (no worker consumes it until one is started)."""
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
    _reset_amqp_caches()
    try:
        yield queue
    finally:
        app.conf.update(saved)
        _reset_amqp_caches()
        _forget_queue(queue)


def _worker():
    return start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=20)


@pytest.fixture
def celery_worker_app():
    with _run_queue() as queue, _worker():
        yield queue


def _forget_queue(queue: str) -> None:
    """The queue (and kombu's binding sets for it) were this run's alone: leave nothing behind in Redis."""
    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    with contextlib.suppress(redis.RedisError):
        keys = list(client.scan_iter(match=f"*{queue}*", count=1000))
        if keys:
            client.delete(*keys)
    client.close()


def _wait_for(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_worker_sends_the_welcome_email(celery_worker_app, mailoutbox):
    organization = OrganizationFactory(name="Worker Test Co")
    user = member_of(organization, Role.OWNER)
    assert app.conf.task_always_eager is False
    runs: list[tuple[str, threading.Thread]] = []

    def record_thread(sender=None, task_id=None, **kwargs):
        runs.append((task_id, threading.current_thread()))

    task_prerun.connect(record_thread, weak=False)
    try:
        result = tasks.send_welcome_email.delay(user.pk, organization.pk)
        assert _wait_for(lambda: any("Welcome to LeadFlow" in m.subject for m in mail.outbox)), (
            f"the worker did not send the welcome email (queue {celery_worker_app}); "
            f"outbox: {[m.subject for m in mail.outbox]}"
        )
    finally:
        task_prerun.disconnect(record_thread)
    # The worker thread ran it, off the broker; eager mode would have run it in this thread during delay().
    ran_in = [thread for task_id, thread in runs if task_id == result.id]
    assert ran_in
    assert ran_in[0] is not threading.current_thread()
    welcome = next(m for m in mail.outbox if "Welcome to LeadFlow" in m.subject)
    assert welcome.to == [user.email]
    assert "Worker Test Co" in welcome.subject


_order: list[str] = []


@app.task(name="tests.record_run")
def record_run(label: str) -> None:
    _order.append(label)


def test_bulk_jobs_wait_behind_a_leads_own_steps():
    """Redis priorities: queued first, an import still runs after a lead's steps (which keep their order)."""
    from integrations.tasks import sync_facebook_leads
    from leadflow.celery import PRIORITY_BULK
    from leads.tasks import run_lead_import

    assert run_lead_import.priority == sync_facebook_leads.priority == PRIORITY_BULK
    _order.clear()
    with _run_queue():
        record_run.apply_async(("import",), priority=PRIORITY_BULK)
        record_run.apply_async(("fetch",))
        record_run.apply_async(("webhook",))
        with _worker():
            assert _wait_for(lambda: len(_order) == 3)
    assert _order == ["fetch", "webhook", "import"]
