"""/metrics: off without a token, refused without the right one, and Prometheus text with real figures."""

from __future__ import annotations

import uuid

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from leadflow.celery import app
from leads.models import OutboxEvent
from tests.factories import OrganizationFactory, make_api_key

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_bearer_token(client, metrics_on):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    refused = client.get("/metrics/", HTTP_AUTHORIZATION="Bearer")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_requests_are_counted_by_view_with_their_latency(client, metrics_on):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz/").status_code == 200
    client.get("/no-such-page/")
    after = scrape(client)
    requests = ("leadflow_http_requests_total", {"view": "healthz", "method": "GET", "status": "200"})
    assert value(after, requests[0], **requests[1]) - value(before, requests[0], **requests[1]) == 3
    assert (
        value(after, "leadflow_http_request_duration_seconds_count", view="healthz", method="GET")
        - value(before, "leadflow_http_request_duration_seconds_count", view="healthz", method="GET")
        == 3
    )
    # Paths that match no view share one series (no label per raw path).
    assert value(after, "leadflow_http_requests_total", view="unmatched", method="GET", status="404") >= 1
    assert not any("no-such-page" in str(labels) for _, labels in after)


def test_intake_outcomes_are_counted_by_source_and_status(client, metrics_on, django_capture_on_commit_callbacks):
    organization = OrganizationFactory()
    _, raw_key = make_api_key(organization, scopes=["ingest"])
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(
            "/api/v1/leads/ingest/",
            {"first_name": "Asha", "email": "asha.metrics@example.com"},
            content_type="application/json",
            HTTP_X_API_KEY=raw_key,
        )
        rejected = client.post(
            "/api/v1/leads/ingest/", {"email": "not-an-email"}, content_type="application/json", HTTP_X_API_KEY=raw_key
        )
    assert (accepted.status_code, rejected.status_code) == (201, 400)
    after = scrape(client)
    for status in ("accepted", "rejected"):
        name = "leadflow_intake_submissions_total"
        assert value(after, name, source="api", status=status) - value(before, name, source="api", status=status) == 1


def test_state_gauges_read_the_outbox_and_the_broker(client, metrics_on):
    organization = OrganizationFactory()
    backlog = OutboxEvent.objects.unscoped().filter(handled_at__isnull=True).count()
    OutboxEvent.objects.unscoped().bulk_create(
        [OutboxEvent(organization=organization, topic="lead.created", payload={"lead_id": n}) for n in range(3)]
    )
    queue = f"metrics-test-{uuid.uuid4().hex}"
    previous, app.conf.task_default_queue = app.conf.task_default_queue, queue
    broker = redis.Redis.from_url(app.conf.broker_url)
    try:
        broker.rpush(queue, *range(5))
        samples = scrape(client)
    finally:
        app.conf.task_default_queue = previous
        broker.delete(queue)
        broker.close()
    assert value(samples, "leadflow_outbox_backlog") == backlog + 3
    assert value(samples, "leadflow_outbox_oldest_age_seconds") >= 0
    assert value(samples, "leadflow_celery_queue_length", queue=queue) == 5
    assert ("leadflow_celery_unacked", ()) in samples
    assert ("leadflow_webhook_deliveries_pending", ()) in samples


@pytest.fixture
def receiver():
    """A loopback webhook receiver answering with the status the test sets."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answer = {"status": 204}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(answer["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", answer
    server.shutdown()


def test_webhook_attempts_are_counted_by_outcome(client, metrics_on, receiver, settings):
    from integrations.services.webhooks import webhook_delivery_attempt
    from tests.factories import WebhookDeliveryFactory

    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    url, answer = receiver
    name = "leadflow_webhook_attempts_total"
    before = scrape(client)
    delivered = WebhookDeliveryFactory(status="pending", attempt_count=0, endpoint__url=url)
    webhook_delivery_attempt(delivery_id=delivered.pk)
    answer["status"] = 500
    retried = WebhookDeliveryFactory(status="pending", attempt_count=0, endpoint__url=url)
    webhook_delivery_attempt(delivery_id=retried.pk)
    answer["status"] = 400  # not retried: given up at once
    refused = WebhookDeliveryFactory(status="pending", attempt_count=0, endpoint__url=url)
    webhook_delivery_attempt(delivery_id=refused.pk)
    after = scrape(client)
    for outcome in ("succeeded", "retrying", "failed"):
        assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == 1, outcome
