"""Lead scoring: explainable points from 0 to 100, a grade and the reasons behind them.

A scorer is anything with ``score(lead, rules) -> ScoreResult``. ``settings.LEADFLOW_LEAD_SCORER`` names the one
in use (a later AI scorer plugs in there, and can call :class:`RuleScorer` for its baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from leadflow.caching import ProcessCache

from .constants import Grade, LeadSource, RuleOperator

HOT_AT = 70
WARM_AT = 40

# How much a lead from each source is worth before anything else is known: people who filled a form on purpose
# beat bought lists.
SOURCE_POINTS = {
    LeadSource.FORM: 15,
    LeadSource.MESSAGE: 15,
    LeadSource.FACEBOOK: 10,
    LeadSource.GOOGLE_ADS: 12,
    LeadSource.LINKEDIN: 12,
    LeadSource.WEBHOOK: 8,
    LeadSource.API: 8,
    LeadSource.MANUAL: 8,
    LeadSource.CSV: 3,
}


@dataclass
class ScoreResult:
    score: int
    grade: str
    reasons: list[dict[str, Any]] = field(default_factory=list)


class Scorer(Protocol):
    def score(self, lead, rules) -> ScoreResult: ...


def grade_for(score: int) -> str:
    if score >= HOT_AT:
        return Grade.HOT
    if score >= WARM_AT:
        return Grade.WARM
    return Grade.COLD


class RuleScorer:
    """Completeness, reachability, source, recency, then the organization's own rules."""

    def score(self, lead, rules) -> ScoreResult:
        reasons: list[dict[str, Any]] = []

        def add(points: int, label: str) -> None:
            if points:
                reasons.append({"points": points, "label": label})

        if lead.phone:
            add(20, "Valid phone number")
        if lead.email:
            add(15, "Valid email address")
        if lead.first_name or lead.full_name:
            add(5, "Has a name")
        filled = sum(bool(getattr(lead, name)) for name in ("company", "city", "state", "postal_code", "job_title"))
        add(min(filled * 2, 10), f"{filled} of 5 profile details filled")
        if lead.custom:
            add(min(len(lead.custom) * 2, 6), "Answered form questions")
        if lead.consent_given:
            add(4, "Gave consent")
        add(SOURCE_POINTS.get(lead.source, 0), f"Source: {LeadSource(lead.source).label}")
        age = timezone.now() - lead.received_at
        if age <= timedelta(hours=1):
            add(15, "Arrived in the last hour")
        elif age <= timedelta(days=1):
            add(10, "Arrived today")
        elif age <= timedelta(days=7):
            add(5, "Arrived this week")
        for rule in rules:
            if rule_matches(rule, lead):
                add(rule.points, rule.label)
        total = max(0, min(100, sum(r["points"] for r in reasons)))
        return ScoreResult(score=total, grade=grade_for(total), reasons=reasons)


def field_value(lead, name: str) -> Any:
    if name.startswith("custom."):
        return (lead.custom or {}).get(name[7:])
    return getattr(lead, name, None)


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).replace(",", "").strip())
    except (InvalidOperation, ValueError):
        return None


def rule_matches(rule, lead) -> bool:
    value = field_value(lead, rule.field)
    text = "" if value is None else str(value).strip().lower()
    expected = rule.value.strip().lower()
    match rule.operator:
        case RuleOperator.IS_SET:
            return bool(text)
        case RuleOperator.IS_EMPTY:
            return not text
        case RuleOperator.EQUALS:
            return text == expected
        case RuleOperator.NOT_EQUALS:
            return text != expected
        case RuleOperator.CONTAINS:
            return bool(expected) and expected in text
        case RuleOperator.IN:
            return text in {part.strip() for part in expected.split(",") if part.strip()}
        case RuleOperator.GTE | RuleOperator.LTE:
            actual, limit = _number(value), _number(rule.value)
            if actual is None or limit is None:
                return False
            return actual >= limit if rule.operator == RuleOperator.GTE else actual <= limit
    return False


def get_scorer() -> Scorer:
    return import_string(getattr(settings, "LEADFLOW_LEAD_SCORER", "leads.scoring.RuleScorer"))()


def scores_at_intake() -> bool:
    """Whether the configured scorer is the rule scorer, whose score a lead gets as it is created.

    Any other scorer (an AI one, which calls a remote model) runs in the worker after the lead is stored; until it
    answers, the lead carries the rule scorer's baseline.
    """
    return type(get_scorer()) is RuleScorer


# Intake scores every lead against its organization's rules. A process keeps an organization's active rules for a
# few seconds; an edit is seen at once by the process that saved it (``leads.signals``) and within this time by the
# others, and the nightly rescoring (or ``rescore_leads``) brings older leads up to date.
_rules_cache: ProcessCache[list] = ProcessCache(seconds=10)


def active_rules(organization_id: int) -> list:
    from .models import ScoringRule

    return _rules_cache.get(
        organization_id,
        lambda: list(ScoringRule.objects.unscoped().filter(organization_id=organization_id, is_active=True)),
    )


def rules_forget() -> None:
    _rules_cache.forget()
