"""The messaging pages: the inbox (filters, thread, reply with its errors, assign, archive, read/unread, the nav
badge), templates with previews and variants, automations, channels, speed to lead, notifications — and other
agents' and organizations' conversations answering 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.constants import Role
from messaging.models import AutomationRule, Conversation, Message, MessageTemplate, Notification, TemplateVariant
from tests.conftest import member_of
from tests.factories import (
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    MessageTemplateFactory,
    OrganizationFactory,
)

pytestmark = pytest.mark.django_db


def _login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def agent(organization):
    return member_of(organization, Role.AGENT)


@pytest.fixture
def manager(organization):
    return member_of(organization, Role.MANAGER)


def _conversation(organization, *, owner=None, channel="sms", **fields):
    lead = LeadFactory(organization=organization, owner=owner)
    conversation = ConversationFactory(
        organization=organization,
        lead=lead,
        channel=channel,
        address=lead.phone,
        assignee=owner,
        unread_count=2,
        **fields,
    )
    MessageFactory(organization=organization, conversation=conversation, channel=channel, body="Is it still available?")
    return conversation


def test_the_inbox_lists_an_agents_conversations_and_opens_a_thread(client, organization, agent):
    mine = _conversation(organization, owner=agent, contact_name="Asha Rao")
    theirs = _conversation(organization, owner=member_of(organization, Role.AGENT), contact_name="Hidden Person")
    other_org = _conversation(OrganizationFactory(), contact_name="Elsewhere")
    _login(client, agent)
    page = client.get("/inbox/")
    html = page.content.decode()
    assert page.status_code == 200 and "Asha Rao" in html and "Hidden Person" not in html and "Elsewhere" not in html
    assert client.get("/inbox/badge/").content == b"1"
    thread = client.get(f"/inbox/?c={mine.pk}")
    assert "Is it still available?" in thread.content.decode()
    mine.refresh_from_db()
    assert mine.unread_count == 0  # opened: read
    assert client.get("/inbox/badge/").content == b""
    assert client.get(f"/inbox/c/{theirs.pk}/").status_code == 404
    assert client.get(f"/inbox/c/{other_org.pk}/").status_code == 404
    assert client.post(f"/inbox/c/{other_org.pk}/archive/").status_code == 404


def test_filters_mine_unassigned_unread_and_channel(client, organization, manager):
    mine = _conversation(organization, owner=manager, contact_name="Mine Sms")
    unassigned = _conversation(organization, channel="whatsapp", contact_name="Nobody Whatsapp")
    Conversation.objects.unscoped().filter(pk=unassigned.pk).update(unread_count=0)
    _login(client, manager)

    def names(**params):
        html = client.get("/inbox/list/", params).content.decode()
        return {name for name in ("Mine Sms", "Nobody Whatsapp") if name in html}

    assert names() == {"Mine Sms", "Nobody Whatsapp"}
    assert names(view="mine") == {"Mine Sms"}
    assert names(view="unassigned") == {"Nobody Whatsapp"}
    assert names(view="unread") == {"Mine Sms"}
    assert names(channel="whatsapp") == {"Nobody Whatsapp"}
    assert mine


def test_reply_errors_are_shown_on_the_form(client, organization, agent):
    conversation = _conversation(organization, owner=agent, channel="whatsapp")
    _login(client, agent)
    response = client.post(f"/inbox/c/{conversation.pk}/reply/", {"body": "Hello!"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "only an approved template can be sent" in response.content.decode()
    assert not Message.objects.unscoped().filter(direction="out").exists()
    empty = client.post(f"/inbox/c/{conversation.pk}/reply/", {"body": ""})
    assert empty.status_code == 400 and "Write a message or pick a template." in empty.content.decode()


def test_reply_assign_archive_and_unread(client, organization, agent, django_capture_on_commit_callbacks):
    conversation = _conversation(organization, owner=agent)
    _login(client, agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/inbox/c/{conversation.pk}/reply/", {"body": "Yes, it is."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Yes, it is." in response.content.decode()
    reply = Message.objects.unscoped().get(direction="out")
    assert (reply.sent_by_id, reply.status) == (agent.pk, "sent")  # the offline provider sends at once
    colleague = member_of(organization, Role.AGENT)
    client.post(f"/inbox/c/{conversation.pk}/assign/", {"assignee": colleague.pk})
    conversation.refresh_from_db()
    assert conversation.assignee_id == colleague.pk
    client.post(f"/inbox/c/{conversation.pk}/unread/")
    client.post(f"/inbox/c/{conversation.pk}/archive/")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.unread_count) == ("archived", 0)


def test_template_pages_preview_errors_and_variants(client, organization, manager):
    _login(client, manager)
    LeadFactory(organization=organization, first_name="Asha", full_name="Asha Rao")
    preview = client.post(
        "/inbox/templates/preview/", {"channel": "sms", "body": "Hi {{first_name}} from {{organization}}"}
    )
    assert f"Hi Asha from {organization.name}" in preview.content.decode()
    bad = client.post("/inbox/templates/preview/", {"channel": "whatsapp", "body": "Hi {{2}}"})
    assert "without gaps" in bad.content.decode()
    refused = client.post(
        "/inbox/templates/new/",
        {
            "name": "promo",
            "channel": "whatsapp",
            "language": "en",
            "category": "marketing",
            "body": "Hi {{1}}",
            "variables_text": "",
        },
    )
    assert refused.status_code == 400 and "Name one lead field for each" in refused.content.decode()
    created = client.post(
        "/inbox/templates/new/",
        {
            "name": "promo",
            "channel": "sms",
            "language": "en",
            "category": "marketing",
            "body": "Hi {{first_name}}",
            "is_active": "on",
        },
    )
    template = MessageTemplate.objects.unscoped().get(name="promo")
    assert created.status_code == 302
    client.post(
        f"/inbox/templates/{template.pk}/variants/",
        {"label": "B", "body": "Hello {{first_name}}!", "weight": 1, "is_active": "on"},
    )
    assert TemplateVariant.objects.unscoped().get(template=template).label == "B"
    page = client.get("/inbox/templates/").content.decode()
    assert "promo" in page and "A (template)" in page


def test_a_b_variants_split_sends_and_count_replies(organization, django_capture_on_commit_callbacks):
    from leadflow.tenancy.context import organization_scope
    from messaging.selectors import template_stats
    from messaging.services.sending import message_send

    template = MessageTemplateFactory(organization=organization, name="ab", body="Version A {{first_name}}")
    variant = TemplateVariant.objects.unscoped().create(
        organization=organization, template=template, label="B", body="Version B"
    )
    leads = [LeadFactory(organization=organization) for _ in range(4)]
    with django_capture_on_commit_callbacks(execute=True):
        sent = [message_send(organization=organization, channel="sms", lead=lead, template=template) for lead in leads]
    assert sorted(m.template_variant_id or 0 for m in sent) == [0, 0, variant.pk, variant.pk]
    Message.objects.unscoped().filter(pk=sent[0].pk).update(replied_at=timezone.now(), status="delivered")
    with organization_scope(organization):
        stats = template_stats([template])
    a, b = stats[(template.pk, None)], stats[(template.pk, variant.pk)]
    assert (a["sent"], a["delivered"], a["replied"], a["reply_rate"]) == (2, 1, 1, 50.0)
    assert (b["sent"], b["replied"], b["reply_rate"]) == (2, 0, 0.0)


def test_automation_form_errors_and_save(client, organization, manager):
    _login(client, manager)
    bad = client.post(
        "/inbox/automations/new/", {"name": "Chase", "trigger": "no_reply", "match": "all", "steps": "wait 10"}
    )
    assert bad.status_code == 400 and "Say after how many hours" in bad.content.decode()
    bad_step = client.post(
        "/inbox/automations/new/", {"name": "Chase", "trigger": "lead_created", "match": "all", "steps": "fly away"}
    )
    assert "unknown action" in bad_step.content.decode()
    ok = client.post(
        "/inbox/automations/new/",
        {
            "name": "Chase",
            "trigger": "no_reply",
            "hours": 24,
            "match": "any",
            "conditions": "source equals facebook\ncustom.budget gte 50000",
            "steps": "send_template welcome sms\nwait 60\ntag chased",
            "stop_on_reply": "on",
            "is_active": "on",
        },
    )
    assert ok.status_code == 302
    rule = AutomationRule.objects.unscoped().get(name="Chase")
    assert rule.conditions["match"] == "any" and len(rule.conditions["rules"]) == 2
    assert "send_template welcome sms" in client.get(f"/inbox/automations/{rule.pk}/").content.decode()
    assert client.get("/inbox/automations/log/").status_code == 200


def test_channels_settings_refuse_another_workspaces_number(client, organization):
    from messaging.services.channels import messaging_settings_for

    other = messaging_settings_for(OrganizationFactory().pk)
    other.twilio_sms_from = "+15005550006"
    other.save()
    admin = member_of(organization, Role.ADMIN)
    _login(client, admin)
    data = {
        "whatsapp_provider": "twilio",
        "sms_enabled": "on",
        "twilio_sms_from": "+1 500 555 0006",
        "first_contact_target_minutes": 5,
        "ai_monthly_budget": "10",
    }
    response = client.post("/inbox/settings/", data)
    assert response.status_code == 400 and "Another workspace already uses this number" in response.content.decode()
    assert (
        client.post("/inbox/settings/", {**data, "quiet_hours_enabled": "on", "twilio_sms_from": ""}).status_code == 400
    )
    assert client.post("/inbox/settings/", {**data, "twilio_sms_from": "+15005550007"}).status_code == 302
    assert messaging_settings_for(organization.pk).twilio_sms_from == "+15005550007"
    agent = member_of(organization, Role.AGENT)
    _login(client, agent)
    assert client.get("/inbox/settings/").status_code == 403


def test_speed_to_lead_page_and_notifications(client, organization, manager):
    now = timezone.now()
    LeadFactory(
        organization=organization,
        owner=manager,
        received_at=now - timedelta(hours=2),
        first_contacted_at=now - timedelta(hours=2) + timedelta(minutes=1),
    )
    _login(client, manager)
    page = client.get("/inbox/sla/")
    assert (
        page.status_code == 200 and "100.0 %" in page.content.decode() and "chart.umd.min.js" in page.content.decode()
    )
    Notification.objects.unscoped().create(
        organization=organization, user=manager, event="lead_assigned", title="New lead for you: Asha"
    )
    assert client.get("/notifications/bell/").content == b"1"
    assert "New lead for you: Asha" in client.get("/notifications/").content.decode()
    client.post("/notifications/read/")
    assert client.get("/notifications/bell/").content == b""
    response = client.post("/notifications/preferences/", {"lead_assigned__sms": "on", "phone": "not a phone"})
    assert response.status_code == 400
    client.post("/notifications/preferences/", {"lead_assigned__sms": "on", "phone": "+919812345678"})
    assert 'name="lead_assigned__sms" checked' in client.get("/notifications/preferences/").content.decode().replace(
        'id="id_lead_assigned__sms" ', ""
    )


def test_the_nav_shows_the_inbox_with_its_badge(client, organization, agent):
    _login(client, agent)
    html = client.get("/inbox/").content.decode()
    assert 'data-testid="nav-badge-inbox"' in html and 'hx-get="/inbox/badge/"' in html and 'data-testid="bell"' in html
