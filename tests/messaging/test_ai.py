"""AI assistance against a local stand-in speaking OpenAI's chat completions API: reply suggestions (approve, edit,
reject, logged), the AI lead scorer (structured JSON through the leads scorer interface, cached), the monthly budget
cap, and everything off without a key."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from accounts.constants import Role
from leads.scoring import RuleScorer
from messaging.ai.client import spent_this_month
from messaging.ai.scoring import AiLeadScorer
from messaging.models import AiScoreCache, AiSuggestion, AiUsage
from messaging.services.channels import messaging_settings_for
from tests.billing.standins import StandIn, serve
from tests.conftest import member_of
from tests.factories import ConversationFactory, LeadFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def openai_api(settings):
    stand_in = StandIn()
    stand_in.answer = "Yes, it is available. Would Saturday work for a visit?"
    stand_in.usage = (1000, 200)

    def complete(recorded, match):
        request = recorded.json()
        content = stand_in.answer(request) if callable(stand_in.answer) else stand_in.answer
        return {
            "id": "chatcmpl-AbC123",
            "object": "chat.completion",
            "created": 1764583200,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": stand_in.usage[0],
                "completion_tokens": stand_in.usage[1],
                "total_tokens": sum(stand_in.usage),
            },
        }

    stand_in.route("POST", r"/v1/chat/completions", complete)
    server = serve(stand_in)
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.OPENAI_BASE_URL = f"{stand_in.url}/v1"
    settings.OPENAI_MODEL = "gpt-4o-mini"
    yield stand_in
    server.shutdown()


def test_a_suggestion_reads_the_thread_and_is_logged_with_its_decision(
    client, organization, openai_api, django_capture_on_commit_callbacks
):
    agent = member_of(organization, Role.AGENT)
    lead = LeadFactory(organization=organization, owner=agent)
    conversation = ConversationFactory(organization=organization, lead=lead, address=lead.phone, assignee=agent)
    MessageFactory(organization=organization, conversation=conversation, body="Is the flat still available?")
    client.force_login(agent)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/inbox/c/{conversation.pk}/suggest/", HTTP_HX_REQUEST="true").status_code == 200
    [request] = openai_api.calls("POST", "/v1/chat/completions")
    sent = request.json()
    assert {k.lower(): v for k, v in request.headers.items()}["authorization"] == "Bearer sk-test-key"
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][-1] == {"role": "user", "content": "Is the flat still available?"}
    suggestion = AiSuggestion.objects.unscoped().get()
    assert (suggestion.text, suggestion.status, suggestion.prompt_tokens) == (openai_api.answer, "proposed", 1000)
    assert "Would Saturday work" in client.get(f"/inbox/c/{conversation.pk}/").content.decode()
    # Edited, then sent: logged as edited, with what was sent.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/inbox/c/{conversation.pk}/reply/", {"body": "Yes! Saturday at 11?", "suggestion": suggestion.pk})
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.final_text, suggestion.decided_by_id) == (
        "edited",
        "Yes! Saturday at 11?",
        agent.pk,
    )
    assert suggestion.sent_message.body == "Yes! Saturday at 11?"
    usage = AiUsage.objects.unscoped().get(organization=organization)
    # 1000 input tokens at 0.15 and 200 output at 0.60 per million.
    assert (usage.requests, usage.cost) == (1, Decimal("0.000270"))


def test_the_ai_scorer_answers_structured_json_caches_it_and_keeps_the_rules_baseline(organization, openai_api):
    openai_api.answer = json.dumps({"score": 90, "intent": "hot", "reasons": ["Budget above 50 lakh", "Wants a visit"]})
    lead = LeadFactory(organization=organization, custom={"budget": 6000000, "timeline": "this month"})
    baseline = RuleScorer().score(lead, [])
    result = AiLeadScorer().score(lead, [])
    assert result.score == round((baseline.score + 90) / 2)
    assert {"points": 0, "label": "AI (hot): Budget above 50 lakh"} in result.reasons
    [request] = openai_api.calls("POST", "/v1/chat/completions")
    schema = request.json()["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["name"] == "lead_score"
    assert json.loads(request.json()["messages"][-1]["content"])["answers"] == {
        "budget": 6000000,
        "timeline": "this month",
    }
    # The same facts again: from the cache, no second call.
    AiLeadScorer().score(lead, [])
    assert len(openai_api.calls("POST", "/v1/chat/completions")) == 1
    assert AiScoreCache.objects.unscoped().count() == 1
    # A malformed answer falls back to the rules.
    openai_api.answer = '{"score": "very high"}'
    other = LeadFactory(organization=organization, custom={"budget": 1})
    assert AiLeadScorer().score(other, []).score == RuleScorer().score(other, []).score


def test_the_monthly_budget_caps_calls(organization, openai_api):
    row = messaging_settings_for(organization.pk)
    row.ai_monthly_budget = Decimal("0.01")
    row.save()
    openai_api.answer = json.dumps({"score": 80, "intent": "warm", "reasons": []})
    openai_api.usage = (20000, 10000)  # 0.003 + 0.006 = 0.009 a call
    for n in range(4):
        AiLeadScorer().score(LeadFactory(organization=organization, custom={"n": n}), [])
    # The second call takes the month past 0.01: the third and fourth are never made (the rules score them).
    assert len(openai_api.calls("POST", "/v1/chat/completions")) == 2
    assert spent_this_month(organization.pk) == Decimal("0.018000")


def test_without_a_key_ai_is_off(organization, settings):
    settings.OPENAI_API_KEY = ""
    lead = LeadFactory(organization=organization)
    assert AiLeadScorer().score(lead, []) == RuleScorer().score(lead, [])


def test_the_ai_scorer_plugs_into_the_leads_scorer_setting_and_runs_in_the_worker(
    organization, openai_api, settings, django_capture_on_commit_callbacks
):
    from leads.intake.pipeline import lead_intake
    from leads.models import Lead

    settings.LEADFLOW_LEAD_SCORER = "messaging.ai.scoring.AiLeadScorer"
    openai_api.answer = json.dumps({"score": 100, "intent": "hot", "reasons": ["Ready to buy"]})
    with django_capture_on_commit_callbacks(execute=True):
        outcome = lead_intake(
            organization=organization, source="api", payload={"first_name": "Asha", "email": "asha@example.com"}
        )
    lead = Lead.objects.unscoped().get(pk=outcome.lead.pk)
    assert any(reason["label"] == "AI (hot): Ready to buy" for reason in lead.score_reasons)
    assert lead.score == round((outcome.lead.score + 100) / 2)  # the intake stored the rules' baseline first
