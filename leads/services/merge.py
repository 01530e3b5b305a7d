"""Merging duplicates into one lead, keeping every activity, note, tag and message."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leadflow.realtime import publish

from ..constants import ActivityKind
from ..intake.mapping import CONTACT_FIELDS
from ..models import InboundSubmission, Lead, LeadActivity, LeadNote
from ..signals import leads_merged
from .activity import activity_record
from .leads import lead_rescore

# The fields a merge chooses between; the rest (stage, owner, score …) stay the primary's.
MERGE_FIELDS = (
    *CONTACT_FIELDS,
    "deal_value",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "gclid",
    "fbclid",
    "landing_page",
    "referrer",
    "consent_given",
    "consent_text",
    "consent_at",
    "consent_certificate_url",
)


def _empty(value: Any) -> bool:
    return value in (None, "", [], {}, False)


def merge_preview(*, primary: Lead, duplicates: list[Lead], choices: dict[str, int] | None = None) -> dict[str, dict]:
    """For each field: the value that will win, which lead it comes from, and every candidate.

    The primary's value wins unless it is empty (then the first duplicate that has one) or ``choices`` names
    another lead for the field.
    """
    choices = choices or {}
    leads = {lead.pk: lead for lead in [primary, *duplicates]}
    unknown = [f for f in choices if f not in MERGE_FIELDS]
    if unknown:
        raise ServiceError(f"These fields cannot be chosen: {', '.join(unknown)}.", field="choices")
    preview = {}
    for name in MERGE_FIELDS:
        candidates = [
            {"lead": lead.pk, "value": getattr(lead, name)}
            for lead in leads.values()
            if not _empty(getattr(lead, name))
        ]
        if name in choices:
            if choices[name] not in leads:
                raise ServiceError(f"Choose {name} from one of the merged leads.", field="choices")
            winner = choices[name]
        else:
            winner = next((c["lead"] for c in candidates), primary.pk)
        preview[name] = {"value": getattr(leads[winner], name), "from": winner, "candidates": candidates}
    preview["tags"] = {
        "value": sorted({t for lead in leads.values() for t in lead.tags}),
        "from": None,
        "candidates": [],
    }
    custom: dict[str, Any] = {}
    for lead in [*reversed(duplicates), primary]:
        custom.update(lead.custom or {})
    preview["custom"] = {"value": custom, "from": None, "candidates": []}
    return preview


@transaction.atomic
def leads_merge(
    *, primary: Lead, duplicates: list[Lead], actor, choices: dict[str, int] | None = None, request=None
) -> Lead:
    duplicates = [lead for lead in duplicates if lead.pk != primary.pk]
    if not duplicates:
        raise ServiceError("Choose at least one other lead to merge in.", field="duplicates")
    locked = {
        lead.pk: lead
        for lead in Lead.objects.select_for_update().filter(pk__in=[primary.pk, *(d.pk for d in duplicates)])
    }
    if len(locked) != len(duplicates) + 1:
        raise ServiceError("Some of these leads no longer exist.", field="duplicates")
    primary = locked[primary.pk]
    duplicates = [locked[d.pk] for d in duplicates]
    preview = merge_preview(primary=primary, duplicates=duplicates, choices=choices)
    for name, choice in preview.items():
        setattr(primary, name, choice["value"])
    ids = [d.pk for d in duplicates]
    # Everything that pointed at the merged leads now points at the primary.
    LeadActivity.objects.filter(lead_id__in=ids).update(lead=primary)
    LeadNote.objects.filter(lead_id__in=ids).update(lead=primary)
    InboundSubmission.objects.filter(lead_id__in=ids).update(lead=primary)
    Lead.objects.filter(duplicate_of_id__in=ids).exclude(pk=primary.pk).update(duplicate_of=primary)
    # The count is of duplicate arrivals, so it keeps those the merged leads had seen.
    primary.duplicate_count += sum(d.duplicate_count for d in duplicates)
    leads_merged.send(sender=Lead, primary=primary, merged_ids=ids)
    snapshot = {
        d.pk: {
            "name": d.display_name,
            "email": d.email,
            "phone": d.phone,
            "source": d.source,
            "external_id": d.external_id,
        }
        for d in duplicates
    }
    Lead.objects.filter(pk__in=ids).delete()
    if primary.duplicate_of_id in ids:
        primary.duplicate_of = None
    primary.save()
    activity_record(
        lead=primary,
        kind=ActivityKind.MERGED,
        actor=actor,
        message=f"Merged {len(ids)} lead(s) into this one",
        data={"merged": snapshot},
    )
    lead_rescore(primary)
    audit_record(
        organization=primary.organization,
        action="lead.merged",
        actor=actor,
        target=primary,
        request=request,
        changes={"merged": [None, ids]},
    )
    for pk in ids:
        publish(primary.organization, "lead.deleted", {"id": pk, "merged_into": primary.pk})
    return primary
