"""The live event socket at ``/ws/events/``.

A signed-in member joins their organization's group and their own; anonymous sockets and non-members are
refused before the handshake completes.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from leadflow.realtime import organization_group, user_group
from leadflow.tenancy.middleware import SESSION_KEY

from .selectors import membership_resolve

# Application close codes (4000-4999): the page's script reads them to decide whether to reconnect.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NO_ORGANIZATION = 4403


class EventsConsumer(AsyncJsonWebsocketConsumer):
    groups: list[str] = []

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session = self.scope.get("session")
        organization_id = session.get(SESSION_KEY) if session is not None else None
        membership = await database_sync_to_async(membership_resolve)(user=user, organization_id=organization_id)
        # A suspended organization is closed on pages and the API; its live events are too.
        if membership is None or not membership.organization.is_active:
            await self.close(code=CLOSE_NO_ORGANIZATION)
            return
        self.organization_id = membership.organization_id
        self.joined = [organization_group(membership.organization_id), user_group(user.pk)]
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"event": "connected", "payload": {"organization_id": membership.organization_id}})

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The socket is for server events; the only client message is a keep-alive.
        if content.get("type") == "ping":
            await self.send_json({"event": "pong", "payload": {}})

    async def event_message(self, message):
        await self.send_json({"event": message["event"], "payload": message["payload"]})

    async def event_batch(self, message):
        for event, payload in message["events"]:
            await self.send_json({"event": event, "payload": payload})
