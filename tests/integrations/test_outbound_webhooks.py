"""Outbound webhooks: Standard Webhooks signatures, delivery to a real loopback receiver, the retry schedule under
frozen time, replay, the circuit breaker, the API, the page, and tenancy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time
from standardwebhooks.webhooks import Webhook

from accounts.constants import Role
from integrations.constants import (
    WEBHOOK_MAX_ATTEMPTS,
    WEBHOOK_RETRY_DELAYS,
    WebhookAttemptTrigger,
    WebhookDeliveryStatus,
)
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from integrations.services import webhooks as services
from leadflow.tenancy.context import organization_scope
from leads.intake.pipeline import lead_intake
from leads.models import PipelineStage
from leads.services.leads import lead_assign, lead_change_stage, lead_update
from tests.conftest import member_of
from tests.factories import LeadFactory, WebhookDeliveryFactory, WebhookEndpointFactory

# The specification's published example (standard-webhooks/spec, "Signature scheme").
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def independent_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """A receiver's check written from the spec alone, sharing no code with LeadFlow or its library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(signature, expected)
        for version, _, signature in (part.partition(",") for part in headers["webhook-signature"].split())
    )


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the stand-in receiver listens on 127.0.0.1
    settings.WEBHOOK_TIMEOUT_S = 5


@pytest.fixture
def receiver():
    """A real HTTP server on an ephemeral loopback port; ``responses`` scripts its answers, in order."""
    seen: list[dict] = []
    responses: list[tuple[int, str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            seen.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            status, text, extra = responses.pop(0) if responses else (200, "ok", {})
            self.send_response(status)
            for name, value in {"content-type": "text/plain", "content-length": str(len(text)), **extra}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/hooks", requests=seen, responses=responses)
    server.shutdown()
    server.server_close()


def _endpoint(organization, receiver, events=("lead.created",), **kwargs) -> WebhookEndpoint:
    return services.webhook_endpoint_create(organization=organization, url=receiver.url, events=events, **kwargs)


def _delivery(organization, endpoint, event_type="lead.created") -> WebhookDelivery:
    with organization_scope(organization):
        [message] = services.webhook_messages_create(
            organization=organization, event_type=event_type, items=[("", {"id": 1}, None)]
        )
        [delivery] = services.deliveries_enqueue(messages=[message], endpoints=[endpoint])
    return delivery


def _attempts(delivery) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.unscoped().filter(delivery=delivery).order_by("number"))


# Signatures ---------------------------------------------------------------------------------------------------------


def test_signature_matches_the_spec_example():
    signature = services.webhook_signature(
        secret=SPEC_SECRET, message_id=SPEC_MESSAGE_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY
    )
    assert signature == SPEC_SIGNATURE
    headers = {"webhook-id": SPEC_MESSAGE_ID, "webhook-timestamp": str(SPEC_TIMESTAMP), "webhook-signature": signature}
    assert independent_verify(SPEC_SECRET, headers, SPEC_BODY.encode())


def test_during_a_rotation_both_secrets_sign():
    new, old = services.webhook_secret_generate(), services.webhook_secret_generate()
    assert new.startswith("whsec_") and len(base64.b64decode(new.removeprefix("whsec_"))) == 32
    headers = services.webhook_headers(secrets=[new, old], message_id="msg_1", timestamp=SPEC_TIMESTAMP, body="{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert independent_verify(new, headers, b"{}") and independent_verify(old, headers, b"{}")
    assert not independent_verify(services.webhook_secret_generate(), headers, b"{}")


# End to end -----------------------------------------------------------------------------------------------------------


def test_a_lead_from_the_intake_reaches_the_receiver_signed(organization, receiver, django_capture_on_commit_callbacks):
    endpoint = _endpoint(organization, receiver, events=["lead.created"])
    with django_capture_on_commit_callbacks(execute=True):
        outcome = lead_intake(
            organization=organization, source="api", payload={"email": "asha@example.com", "first_name": "Asha"}
        )

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers, body = request["headers"], request["body"]
    assert independent_verify(endpoint.secret, headers, body)
    assert Webhook(endpoint.secret).verify(body, headers)["type"] == "lead.created"  # the spec's own library
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    envelope = json.loads(body)
    assert set(envelope) == {"type", "timestamp", "data"}
    assert envelope["data"]["id"] == outcome.lead.pk and envelope["data"]["email"] == "asha@example.com"

    delivery = WebhookDelivery.objects.unscoped().get()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED and delivery.message.message_id == headers["webhook-id"]
    [attempt] = _attempts(delivery)
    assert (attempt.status_code, attempt.response_excerpt, attempt.succeeded) == (200, "ok", True)


def test_a_worker_that_kept_up_sends_the_first_attempt_itself(
    organization, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    """Inside a fetch that was not kept waiting, the lead's webhook goes out from that process (no task queued);
    behind a backlog a task sends it; if the in-process attempt raises, a task is queued instead of losing it."""
    from integrations import tasks
    from leads.services.outbox import outbox_handled_in_process

    queued = []
    monkeypatch.setattr(tasks.send_webhook_deliveries, "delay", lambda ids: queued.append(ids))
    _endpoint(organization, receiver, events=["lead.created"])

    with outbox_handled_in_process(), django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "kept-up@example.com"})
    assert queued == [] and len(receiver.requests) == 1
    [delivery] = WebhookDelivery.objects.unscoped().all()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED

    with outbox_handled_in_process(enabled=False), django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "backlog@example.com"})
    assert len(queued) == 1 and len(receiver.requests) == 1

    def broken(**kwargs):
        raise RuntimeError("attempt bug")

    monkeypatch.setattr(services, "webhook_delivery_attempt", broken)
    with outbox_handled_in_process(), django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "fallback@example.com"})
    assert len(queued) == 2 and len(receiver.requests) == 1


def test_lead_services_publish_updated_stage_changed_and_assigned(
    organization, receiver, django_capture_on_commit_callbacks
):
    _endpoint(organization, receiver, events=["lead.updated", "lead.stage_changed", "lead.assigned"])
    agent = member_of(organization, Role.AGENT)
    lead = LeadFactory(organization=organization)
    with organization_scope(organization):
        target = PipelineStage.objects.exclude(pk=lead.stage_id).order_by("position").first()
        previous = lead.stage
        with django_capture_on_commit_callbacks(execute=True):
            lead_update(lead=lead, actor=None, data={"company": "Acme Corp"})
            lead_change_stage(lead=lead, stage=target, actor=None)
            lead_assign(lead=lead, owner=agent, actor=None)

    bodies = {body["type"]: body["data"] for body in (json.loads(r["body"]) for r in receiver.requests)}
    assert set(bodies) == {"lead.updated", "lead.stage_changed", "lead.assigned"}
    assert "company" in bodies["lead.updated"]["changed_fields"]
    assert bodies["lead.stage_changed"]["previous_stage"]["id"] == previous.pk
    assert bodies["lead.assigned"]["owner"]["id"] == agent.pk


def test_events_an_endpoint_did_not_pick_are_not_sent(organization, receiver, django_capture_on_commit_callbacks):
    _endpoint(organization, receiver, events=["lead.stage_changed"])
    WebhookEndpointFactory(organization=organization, url=receiver.url, events=["lead.created"], is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        lead_intake(organization=organization, source="api", payload={"email": "quiet@example.com"})
    assert receiver.requests == []
    assert not WebhookDelivery.objects.unscoped().exists()


def test_a_pending_delivery_to_an_endpoint_turned_off_fails_without_a_request(organization, receiver):
    endpoint = _endpoint(organization, receiver)
    delivery = _delivery(organization, endpoint)
    WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk).update(is_active=False)

    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (WebhookDeliveryStatus.FAILED, 0)
    assert delivery.last_error == "The endpoint was disabled." and receiver.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_delivery_another_worker_holds_is_left_to_it(organization, receiver):
    """Two tasks for one delivery (a retry and the sweep): the second skips the locked row instead of waiting."""
    from django.db import connections, transaction

    endpoint = _endpoint(organization, receiver)
    delivery = WebhookDeliveryFactory(organization=organization, endpoint=endpoint, status="pending", attempt_count=0)
    holding, released = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                WebhookDelivery.objects.unscoped().select_for_update().get(pk=delivery.pk)
                holding.set()
                released.wait(5)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert holding.wait(5)
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    finally:
        released.set()
        holder.join()
    assert receiver.requests == []
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is not None  # free again: delivered
    assert len(receiver.requests) == 1


def test_a_repeated_event_reuses_its_message_and_queues_only_what_was_never_attempted(organization, receiver):
    """A retried outbox batch writes its events again: each source key keeps its first message, deliveries that
    exist are not duplicated, and only those never attempted are queued again."""
    first, second = _endpoint(organization, receiver), _endpoint(organization, receiver)
    with organization_scope(organization):
        items = [("outbox:1", {"id": 1}, None), ("outbox:2", {"id": 2}, None), ("", {"id": 3}, None)]
        messages = services.webhook_messages_create(organization=organization, event_type="lead.created", items=items)
        created = services.deliveries_enqueue(messages=messages[:1], endpoints=[first])
        WebhookDelivery.objects.unscoped().filter(pk=created[0].pk).update(attempt_count=1, status="succeeded")

        again = services.webhook_messages_create(organization=organization, event_type="lead.created", items=items)
        requeued = services.deliveries_enqueue(messages=again, endpoints=[first, second])

    assert [m.pk for m in again[:2]] == [m.pk for m in messages[:2]]  # the same messages for the same events
    assert again[2].pk != messages[2].pk  # an event without a source key is a new message each time
    assert WebhookMessage.objects.unscoped().filter(organization=organization).count() == 4
    pairs = {(d.message_id, d.endpoint_id) for d in requeued}
    assert (messages[0].pk, first.pk) not in pairs  # already delivered: left alone
    assert len(pairs) == 5 and all(d.pk for d in requeued)
    assert WebhookDelivery.objects.unscoped().filter(organization=organization).count() == 6


# Retries ------------------------------------------------------------------------------------------------------------


def test_retries_follow_the_schedule_and_span_more_than_a_day(organization, receiver, monkeypatch):
    monkeypatch.setattr(services.random, "uniform", lambda low, high: 0)  # no jitter: the schedule exactly
    endpoint = _endpoint(organization, receiver)
    receiver.responses.extend([(500, "down", {})] * WEBHOOK_MAX_ATTEMPTS)
    start = timezone.now()
    with freeze_time(start) as clock:
        delivery = _delivery(organization, endpoint)
        assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is not None
        for delay in WEBHOOK_RETRY_DELAYS:
            delivery.refresh_from_db()
            assert delivery.status == WebhookDeliveryStatus.PENDING
            assert delivery.next_attempt_at == timezone.now() + delay
            clock.tick(delay - timedelta(seconds=1))
            assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: no request
            clock.tick(timedelta(seconds=1))
            assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is not None
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert len(receiver.requests) == delivery.attempt_count == WEBHOOK_MAX_ATTEMPTS == 10
    assert sum(WEBHOOK_RETRY_DELAYS, timedelta()) >= timedelta(hours=24)
    # The same webhook-id on every try; each try signed afresh.
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {delivery.message.message_id}
    assert len({r["headers"]["webhook-timestamp"] for r in receiver.requests}) == WEBHOOK_MAX_ATTEMPTS
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == WEBHOOK_MAX_ATTEMPTS  # 3 days < 5: still on


def test_retry_delays_have_bounded_jitter_and_honor_retry_after():
    for attempts_made, base in enumerate(WEBHOOK_RETRY_DELAYS, start=1):
        delay = services.webhook_retry_delay(attempts_made=attempts_made)
        assert base <= delay <= base * 1.1
    assert services.webhook_retry_delay(attempts_made=WEBHOOK_MAX_ATTEMPTS) is None
    assert services.webhook_retry_delay(attempts_made=1, retry_after=timedelta(minutes=2)) == timedelta(minutes=2)
    assert services.webhook_retry_delay(attempts_made=1, retry_after=timedelta(days=3)) < timedelta(seconds=6)


def test_a_5xx_then_a_2xx_succeeds_with_every_attempt_logged(organization, receiver):
    endpoint = _endpoint(organization, receiver)
    receiver.responses.extend([(503, "busy, try later", {"retry-after": "30"}), (200, '{"received": true}', {})])
    with freeze_time(timezone.now()) as clock:
        delivery = _delivery(organization, endpoint)
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == timezone.now() + timedelta(seconds=30)  # Retry-After beats 5 s
        clock.tick(timedelta(seconds=30))
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED and delivery.last_status_code == 200
    first, second = _attempts(delivery)
    assert (first.status_code, first.response_excerpt, first.succeeded) == (503, "busy, try later", False)
    assert (second.status_code, second.response_excerpt, second.succeeded) == (200, '{"received": true}', True)
    assert first.latency_ms >= 0 and second.latency_ms >= 0
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None and endpoint.last_success_at


def test_most_4xx_are_not_retried_and_unreachable_receivers_are(organization, receiver):
    endpoint = _endpoint(organization, receiver)
    receiver.responses.append((400, "bad", {}))
    delivery = _delivery(organization, endpoint)
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.FAILED

    closed = WebhookEndpointFactory(organization=organization, url="http://127.0.0.1:9/nothing-listens")
    delivery = _delivery(organization, closed)
    attempt = services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert attempt.status_code is None and attempt.error and delivery.status == WebhookDeliveryStatus.PENDING


def test_private_addresses_are_refused_unless_allowed(organization, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    endpoint = WebhookEndpointFactory(organization=organization, url="http://127.0.0.1:9/internal")
    result = services.webhook_deliver(target=endpoint, message_id="msg_x", body="{}")
    assert result.status_code is None and "non-public" in result.error and not result.retryable
    from leadflow.exceptions import ServiceError

    with pytest.raises(ServiceError):
        services.webhook_endpoint_create(
            organization=organization, url="https://10.0.0.5/hook", events=["lead.created"]
        )


# Replay -------------------------------------------------------------------------------------------------------------


def test_replay_is_idempotent(organization, receiver, user_api_client, django_capture_on_commit_callbacks):
    endpoint = _endpoint(organization, receiver)
    delivery = _delivery(organization, endpoint)
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    client = user_api_client(Role.ADMIN)
    url = reverse("webhook-delivery-replay", kwargs={"pk": delivery.pk})

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(url).status_code == 202
        assert client.post(url).status_code == 202  # asked twice before any worker ran
    for callback in callbacks:  # both queued sends run; the second finds the delivery done
        callback()

    assert len(receiver.requests) == 2  # the original and one replay
    assert receiver.requests[0]["headers"]["webhook-id"] == receiver.requests[1]["headers"]["webhook-id"]
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED and delivery.attempt_count == 2
    assert _attempts(delivery)[1].trigger == WebhookAttemptTrigger.REPLAY


# Circuit breaker --------------------------------------------------------------------------------------------------------


def test_an_endpoint_failing_for_five_days_is_disabled_and_the_owner_told(
    organization, owner, receiver, django_capture_on_commit_callbacks
):
    endpoint = _endpoint(organization, receiver)
    receiver.responses.extend([(500, "down", {})] * 3)
    with freeze_time(timezone.now()) as clock:
        first, second, waiting = (_delivery(organization, endpoint) for _ in range(3))
        services.webhook_delivery_attempt(delivery_id=first.pk)
        clock.tick(timedelta(days=4))
        services.webhook_delivery_attempt(delivery_id=second.pk)
        assert WebhookEndpoint.objects.unscoped().get(pk=endpoint.pk).is_active  # 4 days: not yet
        clock.tick(timedelta(days=1))
        with django_capture_on_commit_callbacks(execute=True):
            services.webhook_delivery_attempt(delivery_id=first.pk)

    endpoint.refresh_from_db()
    assert not endpoint.is_active and "5 days" in endpoint.disabled_reason
    statuses = set(WebhookDelivery.objects.unscoped().filter(endpoint=endpoint).values_list("status", flat=True))
    assert statuses == {WebhookDeliveryStatus.FAILED}  # nothing more is tried against a disabled endpoint
    [email] = [m for m in mail.outbox if "disabled" in m.subject]
    assert email.to == [owner.email] and endpoint.url in email.body
    assert services.webhook_delivery_attempt(delivery_id=waiting.pk) is None
    assert len(receiver.requests) == 3


def test_410_gone_disables_at_once(organization, owner, receiver, django_capture_on_commit_callbacks):
    endpoint = _endpoint(organization, receiver)
    receiver.responses.append((410, "gone", {}))
    delivery = _delivery(organization, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason
    assert len([m for m in mail.outbox if "disabled" in m.subject]) == 1


# API ----------------------------------------------------------------------------------------------------------------


def test_endpoint_api_shows_the_secret_once_rotates_and_sends_a_test(
    organization, receiver, user_api_client, django_capture_on_commit_callbacks
):
    client = user_api_client(Role.ADMIN)
    created = client.post(
        reverse("webhook-endpoint-list"),
        {"url": receiver.url, "events": ["lead.created", "lead.assigned"], "description": "CRM"},
        format="json",
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    detail_url = reverse("webhook-endpoint-detail", kwargs={"pk": created.json()["id"]})
    shown = client.get(detail_url).json()
    assert "secret" not in shown and shown["secret_hint"] == secret[:10] + "…"

    rotated = client.post(reverse("webhook-endpoint-rotate-secret", kwargs={"pk": shown["id"]})).json()["secret"]
    assert rotated != secret
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("webhook-endpoint-test", kwargs={"pk": shown["id"]}))
    assert response.status_code == 202
    [request] = receiver.requests
    assert json.loads(request["body"])["type"] == "webhook.test"
    assert independent_verify(rotated, request["headers"], request["body"])
    assert independent_verify(secret, request["headers"], request["body"])  # the old one, for 24 hours

    listed = client.get(reverse("webhook-endpoint-deliveries", kwargs={"pk": shown["id"]})).json()["results"]
    assert listed[0]["attempts"][0]["status_code"] == 200

    bad = client.patch(detail_url, {"events": ["lead.exploded"]}, format="json")
    assert bad.status_code == 400
    assert client.patch(detail_url, {"is_active": False}, format="json").json()["is_active"] is False
    assert client.delete(detail_url).status_code == 204


def test_agents_cannot_manage_webhooks(organization, user_api_client):
    assert user_api_client(Role.MANAGER).get(reverse("webhook-endpoint-list")).status_code == 403


def test_deliveries_list_is_scoped_and_its_query_count_does_not_grow(organization, other_organization, user_api_client):
    ours = [WebhookDeliveryFactory(organization=organization) for _ in range(2)]
    theirs = WebhookDeliveryFactory(organization=other_organization)
    WebhookEndpointFactory(organization=other_organization)
    client = user_api_client(Role.ADMIN)
    url = reverse("webhook-delivery-list")
    client.get(url)  # warm up the session and membership caches

    response = client.get(url)
    ids = {item["id"] for item in response.json()["results"]}
    assert ids == {d.pk for d in ours} and theirs.pk not in ids
    assert client.get(reverse("webhook-delivery-detail", kwargs={"pk": theirs.pk})).status_code == 404
    assert client.get(reverse("webhook-endpoint-detail", kwargs={"pk": theirs.endpoint_id})).status_code == 404
    endpoint_ids = {item["id"] for item in client.get(reverse("webhook-endpoint-list")).json()["results"]}
    assert endpoint_ids == {d.endpoint_id for d in ours}

    with CountQueries() as few:
        client.get(url)
    for _ in range(8):
        WebhookAttempt.objects.unscoped().create(
            organization=organization, delivery=WebhookDeliveryFactory(organization=organization), number=1
        )
    with CountQueries() as many:
        assert len(client.get(url).json()["results"]) == 10
    assert many.count == few.count <= 6


class CountQueries:
    def __enter__(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self._context = CaptureQueriesContext(connection)
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        self._context.__exit__(*exc)
        self.count = len(self._context.captured_queries)


# Page ---------------------------------------------------------------------------------------------------------------


def test_webhooks_page_adds_an_endpoint_and_shows_deliveries(client, organization, receiver):
    admin = member_of(organization, Role.ADMIN)
    client.force_login(admin)
    page = client.get(reverse("integrations:webhooks"))
    assert page.status_code == 200 and b"Add an endpoint" in page.content

    created = client.post(
        reverse("integrations:webhooks"),
        {"url": receiver.url, "description": "Zapier", "events": ["lead.created", "lead.duplicate"], "is_active": "on"},
    )
    assert created.status_code == 201
    endpoint = WebhookEndpoint.objects.unscoped().get(organization=organization)
    assert endpoint.secret.encode() in created.content and endpoint.events == ["lead.created", "lead.duplicate"]
    assert endpoint.secret.encode() not in client.get(reverse("integrations:webhooks")).content

    row = client.post(reverse("integrations:webhook_test", kwargs={"pk": endpoint.pk}), HTTP_HX_REQUEST="true")
    assert row.status_code == 201 and b"webhook.test" in row.content
    detail = client.get(reverse("integrations:webhook_detail", kwargs={"pk": endpoint.pk}))
    assert detail.status_code == 200 and b"webhook.test" in detail.content and b"Replay" in detail.content

    invalid = client.post(reverse("integrations:webhooks"), {"url": receiver.url, "events": []})
    assert invalid.status_code == 400 and b"field-error" in invalid.content


def test_webhook_pages_hide_other_organizations(client, organization, other_organization):
    theirs = WebhookDeliveryFactory(organization=other_organization)
    client.force_login(member_of(organization, Role.OWNER))
    assert client.get(reverse("integrations:webhook_detail", kwargs={"pk": theirs.endpoint_id})).status_code == 404
    replay = reverse("integrations:webhook_delivery_replay", kwargs={"pk": theirs.pk})
    assert client.post(replay).status_code == 404
    assert WebhookMessage.objects.unscoped().filter(organization=organization).count() == 0
    client.force_login(member_of(organization, Role.AGENT))
    assert client.get(reverse("integrations:webhooks")).status_code == 403
