"""One way to push live events to browsers: ``publish(organization, event, payload)``.

Events go out only after the surrounding transaction commits, so a page never shows something that was rolled
back. Consumers join ``org-<id>`` and ``user-<id>`` groups (see :mod:`accounts.consumers`).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def organization_group(organization_id: int) -> str:
    return f"org-{organization_id}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def _send(group: str, event: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "event.message", "event": event, "payload": payload})
    except Exception:  # A live update is best effort: a Redis hiccup must never fail the write behind it.
        logger.exception("could not publish %s to %s", event, group)


def _send_many(group: str, messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all():
        for event, payload in messages:
            await layer.group_send(group, {"type": "event.message", "event": event, "payload": payload})

    try:
        async_to_sync(send_all)()
    except Exception:  # best effort, as in _send
        logger.exception("could not publish %d events to %s", len(messages), group)


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
