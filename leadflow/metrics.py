"""Prometheus metrics at ``/metrics`` (``prometheus-client``), for a scraper holding ``METRICS_TOKEN``.

Two kinds:

* **events**, counted where they happen: HTTP requests and their latency by view (``MetricsMiddleware``), intake
  outcomes by source and status (``leads.intake.pipeline``), outbound webhook attempts by outcome
  (``integrations.services.webhooks``). They live in each process; with ``PROMETHEUS_MULTIPROC_DIR`` set (the same
  empty directory for every web and worker process of a machine, wiped at start) ``/metrics`` adds them all up,
  and a machine that runs only workers serves its own on ``METRICS_WORKER_PORT``.
* **state**, read when scraped: the outbox backlog and its oldest event, webhook deliveries waiting, Celery queue
  lengths and unacknowledged tasks on the broker, live workers and the age of beat's last tick. These come from
  partial indexes and Redis, so a scrape costs a few milliseconds however big the tables are.

Server errors are also counted per minute in Redis, for the admin's system health page (every process adds to
the same counter there).
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "leadflow_http_requests", "HTTP requests answered, by view, method and status", ["view", "method", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "leadflow_http_request_duration_seconds",
    "Time to answer HTTP requests, by view and method",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INTAKE_SUBMISSIONS = Counter(
    "leadflow_intake_submissions",
    "Submissions processed by the intake pipeline, by source and outcome",
    ["source", "status"],
)
WEBHOOK_ATTEMPTS = Counter(
    "leadflow_webhook_attempts",
    "Outbound webhook attempts, by outcome: succeeded, retrying (will be tried again) or failed (given up)",
    ["outcome"],
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SERVER_ERRORS_BUCKET_TTL_S = 2 * 24 * 60 * 60


def intake_outcome_count(*, source: str, status: str) -> None:
    INTAKE_SUBMISSIONS.labels(source=source, status=status).inc()


def webhook_attempt_count(*, outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()


# Server errors per minute, in Redis ---------------------------------------------------------------------------------


def _server_errors_key(minute: int) -> str:
    from .redis import redis_key

    return redis_key(f"operations:http-5xx:{minute}")


def server_error_count(*, at: float | None = None) -> None:
    from .redis import redis_client

    client = redis_client()
    if client is None:
        return
    key = _server_errors_key(int((at or time.time()) // 60))
    try:
        pipeline = client.pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, SERVER_ERRORS_BUCKET_TTL_S)
        pipeline.execute()
    except Exception:  # never fail a response (already an error) for a counter
        logger.warning("could not count a server error in Redis", exc_info=True)


def server_errors_since(*, seconds: int, now: float | None = None) -> int | None:
    """Server errors answered in the last ``seconds`` (whole minutes), by every process; ``None`` without Redis."""
    from .redis import redis_client

    client = redis_client()
    if client is None:
        return None
    this_minute = int((now or time.time()) // 60)
    keys = [_server_errors_key(minute) for minute in range(this_minute - seconds // 60 + 1, this_minute + 1)]
    return sum(int(value) for value in client.mget(keys) if value)


class MetricsMiddleware:
    """Counts and times every request by the view that answered it (the URL pattern's name, never the raw path,
    so the number of series stays bounded)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(view=view, method=method, status=str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(view=view, method=method).observe(elapsed)
        if response.status_code >= 500:
            server_error_count()
        return response


# State, read at scrape time ---------------------------------------------------------------------------------------


class StateCollector:
    """Gauges read from the database and Redis when Prometheus scrapes; a failing source is skipped and logged."""

    def describe(self):
        return []

    def collect(self):
        for reader in (self._outbox, self._webhooks, self._queues, self._liveness):
            try:
                yield from reader()
            except Exception:
                logger.warning("metrics: %s could not be read", reader.__name__, exc_info=True)

    def _outbox(self):
        from django.db.models import Count, Min

        from leads.models import OutboxEvent

        pending = (
            OutboxEvent.objects.unscoped()
            .filter(handled_at__isnull=True)
            .aggregate(n=Count("id"), oldest=Min("created_at"))
        )
        yield GaugeMetricFamily("leadflow_outbox_backlog", "Outbox events not handled yet", value=pending["n"])
        oldest_age = (time.time() - pending["oldest"].timestamp()) if pending["oldest"] else 0.0
        yield GaugeMetricFamily(
            "leadflow_outbox_oldest_age_seconds", "Age of the oldest unhandled outbox event", value=max(0.0, oldest_age)
        )

    def _webhooks(self):
        from integrations.constants import WebhookDeliveryStatus
        from integrations.models import WebhookDelivery

        pending = WebhookDelivery.objects.unscoped().filter(status=WebhookDeliveryStatus.PENDING).count()
        yield GaugeMetricFamily(
            "leadflow_webhook_deliveries_pending",
            "Outbound webhook deliveries waiting to be sent or retried",
            value=pending,
        )

    def _queues(self):
        from .operations.health import broker_queue_lengths

        lengths = broker_queue_lengths()
        if lengths is None:
            return
        queues = GaugeMetricFamily(
            "leadflow_celery_queue_length", "Tasks waiting on the broker, by queue", labels=["queue"]
        )
        for queue, length in sorted(lengths["queues"].items()):
            queues.add_metric([queue], length)
        yield queues
        yield GaugeMetricFamily(
            "leadflow_celery_unacked", "Tasks a worker has taken but not finished (acks late)", value=lengths["unacked"]
        )

    def _liveness(self):
        from .operations.heartbeats import beat_last_tick, worker_heartbeats

        alive = sum(1 for beat in worker_heartbeats() if beat["alive"])
        yield GaugeMetricFamily("leadflow_celery_workers_alive", "Workers whose heartbeat is recent", value=alive)
        last_tick = beat_last_tick()
        if last_tick is not None:
            yield GaugeMetricFamily(
                "leadflow_beat_last_tick_age_seconds",
                "Seconds since a worker last ran beat's 30-second tick task",
                value=max(0.0, time.time() - last_tick),
            )


_state_registry = CollectorRegistry(auto_describe=False)
_state_registry.register(StateCollector())


def _event_registry() -> CollectorRegistry:
    """This process's counters, or every process's on this machine in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def metrics_exposition() -> bytes:
    return generate_latest(_event_registry()) + generate_latest(_state_registry)


def _authorized(request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


@require_GET
@never_cache
def metrics_view(request):
    """The exposition format for Prometheus. Off (404) without METRICS_TOKEN; 401 without the right bearer token."""
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off: set METRICS_TOKEN")
    if not _authorized(request):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)


def worker_metrics_serve(*, address: str, port: int) -> None:
    """Serve this worker's event metrics over HTTP (a daemon thread of the worker's main process). State metrics
    are left to the web processes' /metrics, so a worker never scrapes the database on Prometheus's behalf."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=address, registry=_event_registry())
    logger.info("worker metrics on http://%s:%s/metrics", address, port)
