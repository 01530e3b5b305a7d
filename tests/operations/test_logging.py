"""Structured logs: the request id middleware, JSON lines, and the request id carried into Celery tasks."""

from __future__ import annotations

import io
import json
import logging

import pytest

from leadflow.logs import (
    TASK_REQUEST_ID_HEADER,
    ContextFilter,
    JsonFormatter,
    request_id_var,
    task_publish_add_request_id,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """Every record of the ``django`` and ``tests`` loggers as the production handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in ("django", "tests")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_every_response_carries_a_request_id(client):
    first, second = client.get("/healthz/"), client.get("/healthz/")
    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_proxys_request_id_is_kept_and_a_bad_one_replaced(client):
    assert (
        client.get("/healthz/", HTTP_X_REQUEST_ID="nginx-5f2b9c0e41d2").headers["X-Request-ID"] == "nginx-5f2b9c0e41d2"
    )
    replaced = client.get("/healthz/", HTTP_X_REQUEST_ID="two\nlines").headers["X-Request-ID"]
    assert replaced != "two\nlines" and len(replaced) == 32


def test_log_lines_of_a_request_name_it(client, json_lines):
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-for-the-log-0001")
    assert response.status_code == 404
    lines = [line for line in json_lines() if line["logger"] == "django.request"]
    assert lines, "Django logs the 404"
    line = lines[-1]
    assert line["request_id"] == "req-for-the-log-0001"
    assert line["level"] == "WARNING"
    assert "Not Found: /no-such-page/" in line["message"]
    assert line["timestamp"].endswith("+00:00")
    # Outside a request the field is left out rather than null.
    logging.getLogger("tests.logging").warning("between requests")
    assert "request_id" not in json_lines()[-1]


def test_json_lines_keep_extra_fields_and_tracebacks(json_lines):
    token = request_id_var.set("req-extra-000001")
    try:
        logging.getLogger("tests.logging").info("lead stored", extra={"lead_id": 42, "source": "api"})
        try:
            raise ValueError("bad payload")
        except ValueError:
            logging.getLogger("tests.logging").exception("intake failed")
    finally:
        request_id_var.reset(token)
    info, error = json_lines()[-2:]
    assert (info["lead_id"], info["source"], info["request_id"]) == (42, "api", "req-extra-000001")
    assert "ValueError: bad payload" in error["exc_info"]


def test_a_task_queued_by_a_request_carries_its_id():
    headers: dict = {}
    task_publish_add_request_id(headers=headers)
    assert headers == {}  # no request in scope: nothing added
    token = request_id_var.set("req-queues-task-01")
    try:
        task_publish_add_request_id(headers=headers)
    finally:
        request_id_var.reset(token)
    assert headers == {TASK_REQUEST_ID_HEADER: "req-queues-task-01"}


def test_production_settings_log_json():
    import subprocess
    import sys

    script = (
        "import django, logging; django.setup(); "
        "from django.conf import settings; "
        "print(settings.LOGGING['handlers']['console']['formatter'])"
    )
    env = {
        **__import__("os").environ,
        "DJANGO_SETTINGS_MODULE": "leadflow.settings.production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "example.com",
    }
    env.pop("LOG_FORMAT", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert result.stdout.strip() == "json", result.stderr
