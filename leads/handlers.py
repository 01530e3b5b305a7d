"""What happens after a lead arrives, run by the outbox worker (see :mod:`leads.services.outbox`).

The handlers take a batch of one organization's events: a burst of leads is scored, counted against the quota,
assigned and announced with a handful of queries.
"""

from __future__ import annotations

from leadflow.realtime import publish_many

from .models import Lead, ScoringRule
from .scoring import get_scorer, scores_at_intake
from .selectors import leads_of_events
from .services.assignment import assign_new_lead
from .services.leads import lead_rescore, lead_summary
from .services.outbox import outbox_batch_handler
from .services.quota import quota_count_leads


def _leads(events) -> list[Lead]:
    """The events' leads, in event order; leads deleted before the worker got to them are skipped."""
    found = leads_of_events(events)
    return [found[event.payload["lead_id"]] for event in events if event.payload["lead_id"] in found]


def _rescore(leads: list[Lead]) -> None:
    """Leads are scored by the rules as they are created; a different scorer (an AI one) scores them here."""
    if scores_at_intake():
        return
    rules, scorer = list(ScoringRule.objects.filter(is_active=True)), get_scorer()
    changed = [lead for lead in leads if lead_rescore(lead, rules=rules, scorer=scorer, save=False)]
    if changed:
        Lead.objects.bulk_update(changed, ["score", "grade", "score_reasons"])


@outbox_batch_handler("lead.created")
def on_leads_created(events) -> None:
    leads = _leads(events)
    if not leads:
        return
    _rescore(leads)
    quota_count_leads(leads)
    for lead in leads:
        assign_new_lead(lead)
    publish_many(leads[0].organization, [("lead.created", lead_summary(lead)) for lead in leads])


@outbox_batch_handler("lead.duplicate")
def on_leads_duplicated(events) -> None:
    leads = _leads(events)
    if not leads:
        return
    _rescore(leads)
    publish_many(leads[0].organization, [("lead.duplicate", lead_summary(lead)) for lead in leads])
