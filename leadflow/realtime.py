"""One way to push live events to browsers: ``publish(organization, event, payload)``.

Events go out only after the surrounding transaction commits, so a page never shows something that was rolled
back. Consumers join ``org-<id>`` and ``user-<id>`` groups (see :mod:`accounts.consumers`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def organization_group(organization_id: int) -> str:
    return f"org-{organization_id}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


class _Publisher:
    """An event loop of this process's own, in a daemon thread, that every publish goes through.

    ``async_to_sync`` from plain sync code starts a fresh event loop per call, and the Redis channel layer opens its
    connections per loop, so each publish paid for a new loop and a new Redis connection (about 4 ms of CPU, more
    than the handlers it followed). One long-lived loop keeps the layer's connections. Rebuilt after a fork.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="realtime-publisher", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine_function, timeout: float = 5) -> None:
        asyncio.run_coroutine_threadsafe(coroutine_function(), self._running_loop()).result(timeout)


_publisher = _Publisher()


def _send_many(group: str, messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    # One group message for a batch (the socket unpacks it into one frame per event): a group send costs a few
    # Redis round trips whatever it carries.
    if len(messages) == 1:
        ((event, payload),) = messages
        message = {"type": "event.message", "event": event, "payload": payload}
    else:
        message = {"type": "event.batch", "events": [[event, payload] for event, payload in messages]}

    async def send_all():
        await layer.group_send(group, message)

    try:
        _publisher.run(send_all)
    except Exception:  # A live update is best effort: a Redis hiccup must never fail the write behind it.
        logger.exception("could not publish %d events to %s", len(messages), group)


def _send(group: str, event: str, payload: dict[str, Any]) -> None:
    _send_many(group, [(event, payload)])


def publish_many(organization, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Several events to one organization after commit, in one trip through the event loop."""
    group = organization_group(organization.pk)
    transaction.on_commit(lambda: _send_many(group, messages))


def publish(organization, event: str, payload: dict[str, Any]) -> None:
    """Send ``event`` to every connected member of ``organization`` once the transaction commits."""
    group = organization_group(organization.pk)
    transaction.on_commit(lambda: _send(group, event, payload))


def publish_to_user(user, event: str, payload: dict[str, Any]) -> None:
    """Send ``event`` to every open socket of one user once the transaction commits."""
    group = user_group(user.pk)
    transaction.on_commit(lambda: _send(group, event, payload))
