"""Inbox events over the real ASGI stack and the Redis channel layer: a signed Twilio webhook reaches the open
sockets of the receiving organization, status ticks follow, and another organization hears nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from accounts.constants import Role
from messaging.models import Message
from messaging.services.channels import messaging_settings_for
from tests.conftest import member_of
from tests.factories import OrganizationFactory
from tests.test_realtime import TIMEOUT, _connect, session_cookie

from .conftest import SMS_NUMBER, inbound_sms, twilio_post

pytestmark = pytest.mark.django_db(transaction=True)


def _world():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    row = messaging_settings_for(org_a.pk)
    row.twilio_sms_from = SMS_NUMBER
    row.save()
    return org_a, member_of(org_a, Role.AGENT), member_of(org_b, Role.OWNER)


async def _next_event(communicator, name: str) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        if message["event"] == name:
            return message["payload"]


async def test_an_inbound_sms_and_its_reply_status_arrive_live_in_the_organizations_inbox(twilio):
    org_a, alice, bob = await sync_to_async(_world)()
    alice_socket, connected, _ = await _connect(await session_cookie(alice))
    bob_socket, connected_b, _ = await _connect(await session_cookie(bob))
    assert connected and connected_b
    try:
        await alice_socket.receive_json_from(timeout=TIMEOUT)
        await bob_socket.receive_json_from(timeout=TIMEOUT)
        response = await sync_to_async(twilio_post)(
            Client(), "/api/webhooks/twilio/messages/", inbound_sms(Body="Hello?")
        )
        assert response.status_code == 200
        payload = await _next_event(alice_socket, "message.created")
        assert payload["message"]["direction"] == "in" and payload["message"]["preview"] == "Hello?"
        assert payload["conversation"]["unread_count"] == 1
        inbound = await sync_to_async(Message.objects.unscoped().get)()
        assert payload["message"]["id"] == inbound.pk

        # A status callback for our reply moves its tick live too.
        def reply_and_deliver():
            from messaging.services.sending import message_send

            reply = message_send(organization=org_a, channel="sms", conversation=inbound.conversation, body="Yes!")
            reply.refresh_from_db()
            twilio_post(
                Client(),
                "/api/webhooks/twilio/status/",
                {"MessageSid": reply.provider_message_id, "MessageStatus": "delivered"},
            )
            return reply

        reply = await sync_to_async(reply_and_deliver)()
        status = await _next_event(alice_socket, "message.status")
        while status["status"] != "delivered":
            status = await _next_event(alice_socket, "message.status")
        assert status["id"] == reply.pk
        # Organization B heard none of it (only its own connection hello, already read).
        assert await bob_socket.receive_nothing(timeout=0.5)
    finally:
        await alice_socket.disconnect()
        await bob_socket.disconnect()
