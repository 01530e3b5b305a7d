"""A lead arriving over the ingest API reaches its own organization's sockets (real ASGI stack, Redis layer, and
the outbox task run eagerly after commit), and never another organization's."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from accounts.constants import Role
from tests.conftest import member_of
from tests.factories import OrganizationFactory, make_api_key
from tests.test_realtime import TIMEOUT, _connect, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def _setup():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    _, key_a = make_api_key(org_a, scopes=["ingest"])
    return org_a, member_of(org_a, Role.AGENT), member_of(org_b, Role.OWNER), key_a


def _ingest(raw_key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    payload = {"email": "live@example.com", "first_name": "Live", "phone": "+14155550123"}
    return client.post("/api/v1/leads/ingest/", json.dumps(payload), content_type="application/json")


async def test_lead_created_reaches_its_organization_only():
    _org_a, alice, bob, key_a = await sync_to_async(_setup)()
    socket_a, connected_a, _ = await _connect(await session_cookie(alice))
    socket_b, connected_b, _ = await _connect(await session_cookie(bob))
    assert connected_a and connected_b
    try:
        await socket_a.receive_json_from(timeout=TIMEOUT)  # "connected"
        await socket_b.receive_json_from(timeout=TIMEOUT)
        response = await sync_to_async(_ingest)(key_a)
        assert response.status_code == 201, response.content
        lead_id = response.json()["id"]
        message = await socket_a.receive_json_from(timeout=TIMEOUT)
        assert message["event"] == "lead.created"
        assert message["payload"]["id"] == lead_id
        assert message["payload"]["name"] == "Live"
        assert message["payload"]["phone"] == "+14155550123"
        assert await socket_b.receive_nothing(timeout=1)
    finally:
        await socket_a.disconnect()
        await socket_b.disconnect()
