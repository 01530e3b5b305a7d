"""The admin's system health page reports what it measures: the database, Redis, the broker's queues, beat's tick,
and failures counted from the tables. Workers are covered with a real worker in test_worker_liveness."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from billing.models import BillingEvent
from leadflow.celery import app
from leadflow.metrics import server_error_count
from leadflow.operations.health import error_rates
from leadflow.tasks import record_beat_tick
from leads.models import InboundSubmission
from tests.factories import InboundSubmissionFactory, OrganizationFactory, WebhookAttemptFactory

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def private_queue():
    """The default queue renamed for this test, so counting it (and filling it) touches nothing else in Redis."""
    name = f"health-test-{uuid.uuid4().hex}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = name
    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        yield name, client
    finally:
        app.conf.task_default_queue = previous
        client.delete(name, f"{name}\x06\x163")
        client.close()


def _section(html: str, name: str) -> str:
    match = re.search(rf'data-check="{name}" data-status="(\w+)">(.*?)</section>', html, re.S)
    assert match, f"no {name} section"
    return match.group(1), match.group(2)


def _checks(response) -> dict:
    return {check.name: check for check in response.context["health"]["checks"]}


def test_health_page_measures_database_redis_and_queues(operator_client, private_queue):
    queue, broker = private_queue
    broker.rpush(queue, "a", "b", "c")
    broker.rpush(f"{queue}\x06\x163", "priority 3")

    response = operator_client.get("/admin/operations/health/")
    assert response.status_code == 200
    html = response.content.decode()
    checks = _checks(response)

    database = {row["alias"]: row for row in checks["Database"].rows}
    assert set(database) == {"default", "replica"}
    assert 0 < database["default"]["latency_ms"] < 5000
    assert database["default"]["version"].startswith("15")
    assert database["default"]["replica"] is False
    assert f"{database['default']['latency_ms']} ms" in html

    info = redis.Redis.from_url(settings.REDIS_URL).info("server")
    assert dict(checks["Redis"].details)["Version"] == info["redis_version"]
    assert info["redis_version"] in _section(html, "redis")[1]

    queues = {row["queue"]: row["waiting"] for row in checks["Queues"].rows}
    assert queues == {queue: 4}
    assert re.search(rf'data-queue="{queue}"><td>{queue}</td><td>4</td>', html)

    # Tests run tasks eagerly: the page says there is no worker to look for rather than inventing one.
    assert checks["Workers"].status == "warning"
    assert "eagerly" in checks["Workers"].summary


def test_beat_tick_age_comes_from_the_tick_task(operator_client):
    status, beat = _section(operator_client.get("/admin/operations/health/?refresh=0").content.decode(), "beat")
    assert status == "error" and "No tick recorded" in beat

    record_beat_tick.delay()
    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    dispatched = timezone.now() - timedelta(minutes=2)
    PeriodicTask.objects.create(
        name="sent", task="leads.tasks.sweep_outbox", interval=every_minute, last_run_at=dispatched
    )
    PeriodicTask.objects.create(name="never sent", task="leads.tasks.sweep_outbox", interval=every_minute)
    response = operator_client.get("/admin/operations/health/?refresh=0")
    status, beat = _section(response.content.decode(), "beat")
    assert status == "ok"
    assert re.search(r"Last tick [01] s ago", beat), beat
    details = dict(_checks(response)["Beat"].details)
    assert details["Enabled periodic tasks"] == 2
    assert details["Last dispatch recorded by beat"].startswith(f"{dispatched:%Y-%m-%d %H:%M}")


def test_error_rates_count_the_last_hour_and_day(operator_client):
    organization = OrganizationFactory()
    now = timezone.now()
    InboundSubmissionFactory.create_batch(2, organization=organization, status="failed")
    InboundSubmissionFactory(organization=organization, status="rejected")
    InboundSubmissionFactory(organization=organization, status="accepted")
    old = InboundSubmissionFactory(organization=organization, status="failed")
    InboundSubmission.objects.unscoped().filter(pk=old.pk).update(received_at=now - timedelta(hours=5))
    WebhookAttemptFactory(organization=organization, succeeded=False)
    WebhookAttemptFactory(organization=organization, succeeded=True, status_code=200)
    BillingEvent.objects.unscoped().create(
        provider="razorpay",
        event_id="evt_failed",
        event_type="payment.failed",
        payload={},
        occurred_at=now,
        status="failed",
    )
    server_error_count()
    server_error_count()

    hour, day = error_rates()
    assert hour["submissions"] == {"total": 4, "failed": 2, "rejected": 1}
    assert day["submissions"] == {"total": 5, "failed": 3, "rejected": 1}
    assert hour["submissions_failed_rate"] == "50.0 %"
    assert hour["attempts"] == {"total": 2, "failed": 1}
    assert hour["billing"] == {"total": 1, "failed": 1}
    assert hour["server_errors"] == 2

    status, errors = _section(operator_client.get("/admin/operations/health/").content.decode(), "errors")
    assert status == "warning"
    assert "2 / 1 / 4 (50.0 % failed)" in errors
    assert "3 / 1 / 5" in errors
