"""An AI lead scorer for ``LEADFLOW_LEAD_SCORER = "messaging.ai.scoring.AiLeadScorer"``.

It runs in the worker (leads score non-rule scorers there), starts from the explainable rule score, and asks the
model for structured JSON — ``{"score": 0-100, "intent": "hot"|"warm"|"cold", "reasons": [...]}`` — about what the
lead told us. Answers are cached by a hash of what the model was shown, so the same lead is never paid for twice;
without a key, with AI off or over the organization's budget, the rule score stands.
"""

from __future__ import annotations

import hashlib
import json

from django.db import IntegrityError, transaction

from leads.scoring import RuleScorer, ScoreResult, grade_for

from ..models import AiScoreCache
from .client import AiUnavailable, ai_available, complete

SCORE_SCHEMA = {
    "name": "lead_score",
    "strict": True,
    "schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["score", "intent", "reasons"],
        "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 100},
            "intent": {"type": "string", "enum": ["hot", "warm", "cold"]},
            "reasons": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        },
    },
}
FIELDS = ("source", "company", "job_title", "city", "state", "country", "utm_source", "utm_campaign")


def lead_facts(lead) -> dict:
    facts = {name: getattr(lead, name) for name in FIELDS if getattr(lead, name, "")}
    facts["has_phone"], facts["has_email"] = bool(lead.phone), bool(lead.email)
    facts["consent_given"] = lead.consent_given
    facts["answers"] = lead.custom or {}
    return facts


def content_hash(facts: dict) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def valid_result(result) -> bool:
    return (
        isinstance(result, dict)
        and isinstance(result.get("score"), int)
        and 0 <= result["score"] <= 100
        and result.get("intent") in ("hot", "warm", "cold")
        and isinstance(result.get("reasons"), list)
    )


class AiLeadScorer:
    def score(self, lead, rules) -> ScoreResult:
        baseline = RuleScorer().score(lead, rules)
        facts = lead_facts(lead)
        digest = content_hash(facts)
        cached = (
            AiScoreCache.objects.unscoped().filter(organization_id=lead.organization_id, content_hash=digest).first()
        )
        result = cached.result if cached is not None else None
        if result is None:
            if not ai_available(lead.organization_id):
                return baseline
            try:
                completion = complete(
                    organization_id=lead.organization_id,
                    messages=[
                        {
                            "role": "system",
                            "content": "You score sales leads from 0 to 100 for how likely they are to buy soon, "
                            "with the intent (hot, warm, cold) and up to five short reasons. Judge only the facts given.",
                        },
                        {"role": "user", "content": json.dumps(facts, default=str)},
                    ],
                    json_schema=SCORE_SCHEMA,
                    max_tokens=200,
                )
            except AiUnavailable:
                return baseline
            result = completion.content
            if not valid_result(result):
                return baseline
            try:
                with transaction.atomic():
                    AiScoreCache.objects.unscoped().create(
                        organization_id=lead.organization_id, content_hash=digest, result=result, model=completion.model
                    )
            except IntegrityError:
                pass  # scored at the same moment by another worker: same facts, same answer
        # Half the rules' explainable score, half the model's, each reason kept.
        score = round((baseline.score + result["score"]) / 2)
        reasons = [
            *baseline.reasons,
            *({"points": 0, "label": f"AI ({result['intent']}): {r}"} for r in result["reasons"]),
        ]
        return ScoreResult(score=score, grade=grade_for(score), reasons=reasons)
