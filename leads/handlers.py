"""What happens after a lead arrives, run by the outbox worker (see :mod:`leads.services.outbox`)."""

from __future__ import annotations

from leadflow.realtime import publish

from .models import Lead
from .services.assignment import assign_new_lead
from .services.leads import lead_rescore, lead_summary
from .services.outbox import outbox_handler
from .services.quota import quota_count_lead


def _lead(event) -> Lead | None:
    return Lead.objects.select_related("stage", "organization").filter(pk=event.payload["lead_id"]).first()


@outbox_handler("lead.created")
def on_lead_created(event) -> None:
    lead = _lead(event)
    if lead is None:  # deleted before the worker got to it
        return
    lead_rescore(lead)
    quota_count_lead(lead)
    assign_new_lead(lead)
    publish(lead.organization, "lead.created", lead_summary(lead))


@outbox_handler("lead.duplicate")
def on_lead_duplicate(event) -> None:
    lead = _lead(event)
    if lead is None:
        return
    lead_rescore(lead)
    publish(lead.organization, "lead.duplicate", lead_summary(lead))
