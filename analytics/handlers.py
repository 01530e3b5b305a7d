"""Leads the intake creates on a day before the live window (a submission replayed days later keeps the day it
was received): the intake writes them with its own SQL (no ``post_save``), so their ``lead.created`` events say so.
The batch's leads are those the leads app's own handler already read (``leads_of_events`` is read once per
batch), so a new lead costs this handler no statement."""

from __future__ import annotations

from leads.selectors import leads_of_events
from leads.services.outbox import outbox_batch_handler

from .signals import maybe_stale


@outbox_batch_handler("lead.created")
@outbox_batch_handler("lead.duplicate")
def leads_created_on_earlier_days(events) -> None:
    leads = leads_of_events(events).values()
    maybe_stale("leads", events[0].organization_id, [lead.received_at for lead in leads])
