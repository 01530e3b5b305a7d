"""Changes to rows older than a cube's live window queue their day for the next refresh.

Every receiver first compares the row's time with the live window in Python: a row of the last days (every new
lead, sale, message; nearly every first contact, assignment and delivery receipt) costs no statement at all, so
the intake pays nothing for analytics.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import Organization
from campaigns.models import CampaignSubmission, LeadReturn, LeadSale
from leads.models import Lead
from leads.signals import leads_changed, leads_merged
from messaging.models import Message

from .cubes import CUBES
from .services import days_mark_stale, organization_timezone_forget, rollups_request_rebuild

# A local day's start is at most a day plus a few hours (DST, the widest UTC offsets) before the same instant in
# UTC, so anything newer than this is inside the window whatever the organization's time zone.
_MARGIN = timedelta(hours=3)


def maybe_stale(cube: str, organization_id: int, moments) -> None:
    horizon = timezone.now() - timedelta(days=CUBES[cube].live_days) + _MARGIN
    old = [moment for moment in moments if moment is not None and moment < horizon]
    if old:
        days_mark_stale(organization_id=organization_id, cube=cube, moments=old)


@receiver(post_save, sender=Lead)
def lead_saved(sender, instance: Lead, raw=False, **kwargs):
    if not raw:
        maybe_stale("leads", instance.organization_id, [instance.received_at])


@receiver(leads_changed)
def leads_changed_without_save(sender, organization_id: int, received_at=None, **kwargs):
    if received_at is None:
        rollups_request_rebuild(organization_id=organization_id)
    else:
        maybe_stale("leads", organization_id, received_at)


@receiver(leads_merged)
def leads_merged_away(sender, primary: Lead, merged_ids, **kwargs):
    moments = Lead.objects.unscoped().filter(pk__in=merged_ids).values_list("received_at", flat=True)
    maybe_stale("leads", primary.organization_id, list(moments))


@receiver(post_save, sender=LeadReturn)
def lead_return_saved(sender, instance: LeadReturn, raw=False, **kwargs):
    if not raw:
        maybe_stale("sales", instance.organization_id, [instance.sale.created_at])


@receiver(post_save, sender=LeadSale)
def lead_sale_saved(sender, instance: LeadSale, raw=False, **kwargs):
    if not raw:
        maybe_stale("sales", instance.organization_id, [instance.created_at])


@receiver(post_save, sender=CampaignSubmission)
def campaign_submission_saved(sender, instance: CampaignSubmission, raw=False, **kwargs):
    if not raw:
        maybe_stale("submissions", instance.organization_id, [instance.created_at])


@receiver(post_save, sender=Message)
def message_saved(sender, instance: Message, raw=False, **kwargs):
    if not raw:
        maybe_stale("messages", instance.organization_id, [instance.created_at])


@receiver(post_save, sender=Organization)
def organization_saved(sender, instance: Organization, **kwargs):
    """A new time zone is used for stale days at once in this process (the next refresh rebuilds in it)."""
    organization_timezone_forget(instance.pk)
