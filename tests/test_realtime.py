"""The live event socket over the real ASGI stack (origin check, session cookie, auth) and the Redis channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import transaction
from django.test import Client
from redis.exceptions import TimeoutError as RedisTimeoutError

from accounts.constants import Role
from accounts.consumers import CLOSE_NO_ORGANIZATION, CLOSE_UNAUTHENTICATED
from leadflow.asgi import application
from leadflow.channel_layer import BLOCKING_RECEIVE_SECONDS
from leadflow.realtime import publish, publish_many, publish_to_user

from .conftest import member_of
from .factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"  # UserFactory's
TIMEOUT = 5


def _world() -> dict:
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    return {
        "org_a": org_a,
        "org_b": org_b,
        "alice": member_of(org_a, Role.AGENT),
        "amir": member_of(org_a, Role.VIEWER),
        "bob": member_of(org_b, Role.OWNER),
    }


def _session_cookie(user) -> str:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _publish(publisher, target, *args) -> None:
    # publish() waits for the commit; a committed atomic block is what a real write looks like.
    with transaction.atomic():
        publisher(target, *args)


world = sync_to_async(_world)
session_cookie = sync_to_async(_session_cookie)
publish_committed = sync_to_async(_publish)


async def _connect(cookie: str | None = None, origin: bytes = b"http://testserver"):
    headers = [(b"origin", origin)]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    return communicator, connected, code


def test_the_channel_layer_is_redis():
    assert isinstance(get_channel_layer(), RedisChannelLayer)


async def test_anonymous_socket_is_refused():
    communicator, connected, code = await _connect()
    assert not connected
    assert code == CLOSE_UNAUTHENTICATED
    await communicator.disconnect()


async def test_bad_session_cookie_is_refused():
    communicator, connected, code = await _connect("not-a-session")
    assert not connected
    assert code == CLOSE_UNAUTHENTICATED
    await communicator.disconnect()


async def test_user_without_organization_is_refused():
    user = await sync_to_async(UserFactory)()
    communicator, connected, code = await _connect(await session_cookie(user))
    assert not connected
    assert code == CLOSE_NO_ORGANIZATION
    await communicator.disconnect()


async def test_member_of_a_suspended_organization_is_refused():
    w = await world()
    cookie = await session_cookie(w["alice"])
    w["org_a"].is_active = False
    await sync_to_async(w["org_a"].save)(update_fields=["is_active"])
    communicator, connected, code = await _connect(cookie)
    assert not connected
    assert code == CLOSE_NO_ORGANIZATION
    await communicator.disconnect()


async def test_foreign_origin_is_refused():
    w = await world()
    communicator, connected, _ = await _connect(await session_cookie(w["alice"]), origin=b"http://evil.example")
    assert not connected
    await communicator.disconnect()


async def test_member_connects_and_receives_only_their_organizations_events():
    w = await world()
    alice, connected, _ = await _connect(await session_cookie(w["alice"]))
    assert connected
    bob, connected_b, _ = await _connect(await session_cookie(w["bob"]))
    assert connected_b
    try:
        hello = await alice.receive_json_from(timeout=TIMEOUT)
        assert hello == {"event": "connected", "payload": {"organization_id": w["org_a"].pk}}
        hello_b = await bob.receive_json_from(timeout=TIMEOUT)
        assert hello_b["payload"]["organization_id"] == w["org_b"].pk

        await publish_committed(publish, w["org_a"], "lead.created", {"id": 42, "name": "Priya"})
        message = await alice.receive_json_from(timeout=TIMEOUT)
        assert message == {"event": "lead.created", "payload": {"id": 42, "name": "Priya"}}
        assert await bob.receive_nothing(timeout=0.5)

        # And the other way round: B's event reaches B only.
        await publish_committed(publish, w["org_b"], "lead.created", {"id": 7})
        assert (await bob.receive_json_from(timeout=TIMEOUT))["payload"] == {"id": 7}
        assert await alice.receive_nothing(timeout=0.5)

        # The socket answers keep-alives.
        await alice.send_json_to({"type": "ping"})
        assert (await alice.receive_json_from(timeout=TIMEOUT))["event"] == "pong"
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_rolled_back_events_are_not_sent():
    w = await world()
    alice, connected, _ = await _connect(await session_cookie(w["alice"]))
    assert connected
    try:
        await alice.receive_json_from(timeout=TIMEOUT)

        def rolled_back():
            try:
                with transaction.atomic():
                    publish(w["org_a"], "lead.created", {"id": 1})
                    raise RuntimeError("the write failed")
            except RuntimeError:
                pass

        await sync_to_async(rolled_back)()
        assert await alice.receive_nothing(timeout=0.5)
    finally:
        await alice.disconnect()


async def test_publish_to_user_reaches_only_that_user():
    w = await world()
    alice, connected, _ = await _connect(await session_cookie(w["alice"]))
    amir, connected_amir, _ = await _connect(await session_cookie(w["amir"]))
    assert connected and connected_amir
    try:
        await alice.receive_json_from(timeout=TIMEOUT)
        await amir.receive_json_from(timeout=TIMEOUT)

        await publish_committed(publish_to_user, w["alice"], "notification", {"text": "New lead assigned"})
        assert await alice.receive_json_from(timeout=TIMEOUT) == {
            "event": "notification",
            "payload": {"text": "New lead assigned"},
        }
        # Amir is in the same organization, but the event was for Alice alone.
        assert await amir.receive_nothing(timeout=0.5)
    finally:
        await alice.disconnect()
        await amir.disconnect()


async def test_a_batch_published_together_arrives_as_one_frame_per_event_in_order():
    w = await world()
    alice, connected, _ = await _connect(await session_cookie(w["alice"]))
    bob, connected_b, _ = await _connect(await session_cookie(w["bob"]))
    assert connected and connected_b
    try:
        await alice.receive_json_from(timeout=TIMEOUT)
        await bob.receive_json_from(timeout=TIMEOUT)
        events = [("lead.created", {"id": n}) for n in range(1, 4)]
        await publish_committed(publish_many, w["org_a"], events)
        received = [await alice.receive_json_from(timeout=TIMEOUT) for _ in events]
        assert received == [{"event": event, "payload": payload} for event, payload in events]
        assert await bob.receive_nothing(timeout=0.5)
    finally:
        await alice.disconnect()
        await bob.disconnect()


def test_the_layers_reads_wait_longer_than_its_blocking_receive():
    # Equal timeouts made a busy Redis's answer to a 5 s block arrive after the read gave up, closing sockets.
    layer = get_channel_layer()
    assert layer.brpop_timeout == BLOCKING_RECEIVE_SECONDS
    assert all(host["socket_timeout"] > BLOCKING_RECEIVE_SECONDS for host in layer.hosts)


def _failing_blocking_receive(layer, failures: int | None):
    """Make the layer's blocking read raise a Redis read timeout ``failures`` times (None: always), then work."""
    real = layer._brpop_with_clean
    calls = {"failed": 0}

    async def flaky(index, channel, timeout):
        if failures is None or calls["failed"] < failures:
            calls["failed"] += 1
            raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")
        return await real(index, channel, timeout)

    return flaky, calls


async def test_a_socket_rides_out_channel_layer_read_timeouts_and_gets_the_events_sent_meanwhile(monkeypatch, caplog):
    w = await world()
    alice, connected, _ = await _connect(await session_cookie(w["alice"]))
    assert connected
    try:
        await alice.receive_json_from(timeout=TIMEOUT)
        layer = get_channel_layer()
        flaky, calls = _failing_blocking_receive(layer, failures=3)
        monkeypatch.setattr(layer, "_brpop_with_clean", flaky)
        # The consumer is parked in a real blocking read; the next read after this event is the flaky one.
        await publish_committed(publish, w["org_a"], "lead.created", {"id": 1})
        assert (await alice.receive_json_from(timeout=TIMEOUT))["payload"] == {"id": 1}
        await publish_committed(publish, w["org_a"], "lead.created", {"id": 2})
        assert (await alice.receive_json_from(timeout=TIMEOUT))["payload"] == {"id": 2}
        assert calls["failed"] == 3
        assert "channel layer receive failed, retrying" in caplog.text
        # Still open: it answers a keep-alive.
        await alice.send_json_to({"type": "ping"})
        assert (await alice.receive_json_from(timeout=TIMEOUT))["event"] == "pong"
    finally:
        await alice.disconnect()


async def test_a_socket_whose_channel_layer_stays_down_closes_so_the_page_reconnects(monkeypatch):
    w = await world()
    alice, connected, _ = await _connect(await session_cookie(w["alice"]))
    assert connected
    await alice.receive_json_from(timeout=TIMEOUT)
    layer = get_channel_layer()
    flaky, calls = _failing_blocking_receive(layer, failures=None)
    monkeypatch.setattr(layer, "_brpop_with_clean", flaky)
    monkeypatch.setattr(layer, "receive_give_up_seconds", 0.5)
    # Wake the parked read so the next one fails; after half a second of failures the consumer gives up.
    await publish_committed(publish, w["org_a"], "lead.created", {"id": 1})
    assert (await alice.receive_json_from(timeout=TIMEOUT))["payload"] == {"id": 1}
    with pytest.raises(RedisTimeoutError):
        # The communicator re-raises the consumer's error once its wait for a frame ends.
        await alice.receive_output(timeout=2)
    assert calls["failed"] > 1
