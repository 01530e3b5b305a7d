"""The messaging API: replies through compliance with field errors in the one error format, templates validated,
automation rules with steps, a member's notifications and preferences theirs alone, messaging settings."""

from __future__ import annotations

import pytest

from accounts.constants import Role
from messaging.models import AutomationRule, Message, Notification
from tests.conftest import member_of
from tests.factories import ConversationFactory, LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_reply_refused_outside_the_whatsapp_window_names_the_field(organization, user_api_client):
    lead = LeadFactory(organization=organization)
    conversation = ConversationFactory(organization=organization, channel="whatsapp", address=lead.phone, lead=lead)
    client = user_api_client(Role.AGENT)
    response = client.post(f"/api/v1/conversations/{conversation.pk}/reply/", {"body": "Hi"}, format="json")
    # An agent sees only their conversations: another agent's (or an unassigned one) is a 404.
    assert response.status_code == 404
    assert not Message.objects.unscoped().exists()
    manager = user_api_client(Role.MANAGER)
    response = manager.post(f"/api/v1/conversations/{conversation.pk}/reply/", {"body": "Hi"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error" and "24 hours" in body["errors"]["template"][0]


def test_send_to_a_lead_and_read_the_thread(organization, user_api_client, django_capture_on_commit_callbacks):
    lead = LeadFactory(organization=organization, phone="+919812345678")
    client = user_api_client(Role.MANAGER)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/messages/send/", {"lead": lead.pk, "channel": "sms", "body": "Hello"}, format="json"
        )
    assert response.status_code == 201, response.content
    conversation_id = response.json()["conversation"]
    thread = client.get(f"/api/v1/conversations/{conversation_id}/messages/").json()
    assert [(m["direction"], m["body"], m["status"]) for m in thread] == [("out", "Hello", "sent")]
    other_lead = LeadFactory(organization=OrganizationFactory())
    refused = client.post(
        "/api/v1/messages/send/", {"lead": other_lead.pk, "channel": "sms", "body": "Hi"}, format="json"
    )
    assert refused.status_code == 400 and refused.json()["errors"] == {"lead": ["No such lead."]}


def test_templates_and_rules_are_validated(organization, user_api_client):
    client = user_api_client(Role.MANAGER)
    bad = client.post(
        "/api/v1/message-templates/", {"name": "promo", "channel": "whatsapp", "body": "Hi {{1}} {{3}}"}, format="json"
    )
    assert bad.status_code == 400 and "without gaps" in bad.json()["errors"]["body"][0]
    good = client.post(
        "/api/v1/message-templates/",
        {"name": "promo", "channel": "whatsapp", "body": "Hi {{1}}", "variables": ["first_name"]},
        format="json",
    )
    assert good.status_code == 201 and good.json()["status"] == "approved"  # offline: usable at once
    LeadFactory(organization=organization, first_name="Asha")
    preview = client.post(f"/api/v1/message-templates/{good.json()['id']}/preview/", {}, format="json").json()
    assert preview["body"] == "Hi Asha" and preview["variables"] == ["Asha"]
    rule = client.post(
        "/api/v1/automation-rules/",
        {
            "name": "Nurture",
            "trigger": "lead_created",
            "conditions": {"match": "all", "rules": [{"field": "source", "operator": "equals", "value": "facebook"}]},
            "steps": [
                {"action": "send_template", "config": {"template": "promo"}},
                {"action": "wait", "config": {"minutes": 30}},
            ],
        },
        format="json",
    )
    assert rule.status_code == 201, rule.content
    assert [s["action"] for s in rule.json()["steps"]] == ["send_template", "wait"]
    bad_rule = client.post(
        "/api/v1/automation-rules/",
        {"name": "Bad", "trigger": "lead_created", "steps": [{"action": "wait", "config": {"minutes": -1}}]},
        format="json",
    )
    assert bad_rule.status_code == 400 and "steps[0].minutes" in bad_rule.json()["errors"]
    assert AutomationRule.objects.unscoped().filter(organization=organization).count() == 1


def test_notifications_are_the_callers_own(organization, user_api_client, key_api_client):
    client = user_api_client(Role.AGENT)
    me = client.handler._force_user
    colleague = member_of(organization, Role.AGENT)
    other_org_user = member_of(OrganizationFactory(), Role.OWNER)
    mine = Notification.objects.unscoped().create(
        organization=organization, user=me, event="lead_assigned", title="Mine"
    )
    Notification.objects.unscoped().create(
        organization=organization, user=colleague, event="lead_assigned", title="Theirs"
    )
    Notification.objects.unscoped().create(
        organization=other_org_user.active_organization, user=me, event="lead_assigned", title="My other workspace"
    )
    body = client.get("/api/v1/notifications/").json()
    assert (body["unread"], [n["title"] for n in body["results"]]) == (1, ["Mine"])
    assert client.post("/api/v1/notifications/", {"ids": [mine.pk]}, format="json").json()["marked_read"] == 1
    assert key_api_client(organization).get("/api/v1/notifications/").status_code == 403  # keys have no inbox
    prefs = client.put(
        "/api/v1/notifications/preferences/",
        [{"event": "message_received", "channel": "email", "enabled": True}],
        format="json",
    ).json()
    assert {"event": "message_received", "channel": "email", "enabled": True} in prefs
    bad = client.put(
        "/api/v1/notifications/preferences/", [{"event": "nope", "channel": "email", "enabled": True}], format="json"
    )
    assert bad.status_code == 400


def test_messaging_settings_need_an_admin_to_change(organization, user_api_client):
    assert (
        user_api_client(Role.MANAGER)
        .patch("/api/v1/messaging/settings/", {"sms_enabled": False}, format="json")
        .status_code
        == 403
    )
    admin = user_api_client(Role.ADMIN)
    response = admin.patch(
        "/api/v1/messaging/settings/", {"whatsapp_provider": "meta", "meta_access_token": "EAAG-secret"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["meta_access_token_set"] is True and "meta_access_token" not in response.json()
    bad = admin.patch("/api/v1/messaging/settings/", {"twilio_sms_from": "12"}, format="json")
    assert bad.status_code == 400 and "twilio_sms_from" in bad.json()["errors"]


def test_opt_outs_can_be_recorded_and_lifted(organization, user_api_client):
    lead = LeadFactory(organization=organization, phone="+919812345678")
    client = user_api_client(Role.MANAGER)
    created = client.post("/api/v1/opt-outs/", {"address": "98123 45678", "channel": "sms"}, format="json")
    assert created.status_code == 201 and created.json()["lead"] == lead.pk and created.json()["method"] == "manual"
    assert client.delete(f"/api/v1/opt-outs/{created.json()['id']}/").status_code == 204
    assert client.get("/api/v1/opt-outs/").json()["results"] == []
