"""Scoring many leads at once: nightly from beat and from ``manage.py rescore_leads``."""

from __future__ import annotations

from accounts.models import Organization
from leadflow.tenancy.context import organization_scope

from ..models import Lead, ScoringRule
from ..scoring import get_scorer

BATCH = 2000


def leads_rescore(*, organization: Organization | None = None, since=None) -> int:
    """Recompute scores; writes only the leads whose score, grade or reasons changed. Returns how many changed."""
    organizations = [organization] if organization else Organization.objects.filter(is_active=True)
    scorer = get_scorer()
    changed = 0
    for org in organizations:
        with organization_scope(org):
            rules = list(ScoringRule.objects.filter(is_active=True))
            queryset = Lead.objects.all()
            if since is not None:
                queryset = queryset.filter(received_at__gte=since)
            batch: list[Lead] = []
            for lead in queryset.order_by("pk").iterator(chunk_size=BATCH):
                result = scorer.score(lead, rules)
                if (lead.score, lead.grade, lead.score_reasons) != (result.score, result.grade, result.reasons):
                    lead.score, lead.grade, lead.score_reasons = result.score, result.grade, result.reasons
                    batch.append(lead)
                if len(batch) >= BATCH:
                    changed += _flush(batch)
            changed += _flush(batch)
    return changed


def _flush(batch: list[Lead]) -> int:
    n = len(batch)
    if batch:
        Lead.objects.bulk_update(batch, ["score", "grade", "score_reasons"], batch_size=500)
        batch.clear()
    return n
