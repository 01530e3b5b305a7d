"""Working a lead: edits, stage moves, won/lost, owner, notes, tags, deletion and bulk actions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership
from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leadflow.realtime import publish, publish_to_user

from ..constants import ActivityKind, StageKind
from ..intake.custom_fields import custom_field_schema
from ..intake.mapping import CONTACT_FIELDS, clean_lead_fields, clean_tags
from ..intake.normalize import NormalizationError
from ..models import Lead, LeadNote, PipelineStage, ScoringRule
from ..scoring import get_scorer
from ..signals import leads_changed
from .activity import activity_record
from .outbox import outbox_publish

# Fields a person may edit on a lead (attribution and consent record what the source sent and stay as received).
EDITABLE_FIELDS = (*CONTACT_FIELDS, "custom", "deal_value")
BULK_ACTIONS = ("stage", "assign", "tag", "untag", "delete")
MAX_BULK = 1000


def lead_summary(lead: Lead) -> dict[str, Any]:
    """What live pages need to show a lead in a list, without another request."""
    return {
        "id": lead.pk,
        "name": lead.display_name,
        "email": lead.email,
        "phone": lead.phone,
        "source": lead.source,
        "source_label": lead.get_source_display(),
        "stage": lead.stage.name if lead.stage_id else "",
        "owner_id": lead.owner_id,
        "score": lead.score,
        "grade": lead.grade,
        "received_at": lead.received_at.isoformat(),
        "duplicate_of": lead.duplicate_of_id,
    }


def _publish_change(lead: Lead, event: str = "lead.updated") -> None:
    publish(lead.organization, event, lead_summary(lead))


def lead_rescore(lead: Lead, *, rules=None, scorer=None, save: bool = True) -> bool:
    """Compute the score again; returns whether it changed."""
    if rules is None:
        rules = list(ScoringRule.objects.filter(is_active=True))
    result = (scorer or get_scorer()).score(lead, rules)
    changed = (lead.score, lead.grade, lead.score_reasons) != (result.score, result.grade, result.reasons)
    lead.score, lead.grade, lead.score_reasons = result.score, result.grade, result.reasons
    if changed and save:
        Lead.objects.filter(pk=lead.pk).update(score=result.score, grade=result.grade, score_reasons=result.reasons)
    return changed


@transaction.atomic
def lead_update(*, lead: Lead, actor, data: dict[str, Any]) -> Lead:
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be edited."] for name in sorted(unknown)})
    shaped = {name: getattr(lead, name) for name in EDITABLE_FIELDS}
    shaped.update(data)
    if "full_name" not in data and ({"first_name", "last_name"} & set(data)):
        shaped["full_name"] = ""
    schema = custom_field_schema(organization=lead.organization, source=lead.source, context={"lead_id": lead.pk})
    fields, errors = clean_lead_fields(shaped, organization=lead.organization, source=lead.source, schema=schema)
    errors = {
        name: messages
        for name, messages in errors.items()
        if name in EDITABLE_FIELDS or name.startswith("custom") or name == "non_field_errors"
    }
    if errors:
        raise ValidationError(errors)
    changes = {}
    for name in EDITABLE_FIELDS:
        if name in fields and fields[name] != getattr(lead, name):
            changes[name] = [_plain(getattr(lead, name)), _plain(fields[name])]
            setattr(lead, name, fields[name])
    if changes:
        lead.save()
        activity_record(
            lead=lead,
            kind=ActivityKind.UPDATED,
            actor=actor,
            message="Changed " + ", ".join(f.replace("_", " ") for f in changes),
            data={"changes": changes},
        )
        lead_rescore(lead)
        _publish_change(lead)
        outbox_publish(
            organization=lead.organization,
            topic="lead.updated",
            payload={"lead_id": lead.pk, "changed_fields": sorted(changes)},
        )
    return lead


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | date):
        return str(value)
    return value


@transaction.atomic
def lead_change_stage(*, lead: Lead, stage: PipelineStage, actor, lost_reason: str = "") -> Lead:
    if stage.organization_id != lead.organization_id:
        raise ServiceError("Pick one of your pipeline's stages.", field="stage")
    if stage.pk == lead.stage_id:
        return lead
    previous = lead.stage
    lead.stage = stage
    update = ["stage", "updated_at"]
    if stage.kind == StageKind.WON and not lead.won_on:
        lead.won_on = timezone.localdate()
        lead.won_amount = lead.won_amount if lead.won_amount is not None else lead.deal_value
        update += ["won_on", "won_amount"]
    if stage.kind == StageKind.LOST and lost_reason:
        lead.lost_reason = lost_reason[:255]
        update.append("lost_reason")
    if previous.kind == StageKind.OPEN and not lead.first_contacted_at and previous.position <= stage.position:
        # Leaving the first stage is the first sign a person worked the lead: speed to lead stops here.
        lead.first_contacted_at = timezone.now()
        update.append("first_contacted_at")
    lead.save(update_fields=update)
    kind = {StageKind.WON: ActivityKind.WON, StageKind.LOST: ActivityKind.LOST}.get(
        stage.kind, ActivityKind.STAGE_CHANGED
    )
    activity_record(
        lead=lead,
        kind=kind,
        actor=actor,
        message=f"{previous.name} → {stage.name}",
        data={"from": previous.pk, "to": stage.pk},
    )
    _publish_change(lead)
    outbox_publish(
        organization=lead.organization,
        topic="lead.stage_changed",
        payload={
            "lead_id": lead.pk,
            "previous_stage": {"id": previous.pk, "name": previous.name, "kind": previous.kind},
        },
    )
    if previous.kind == StageKind.OPEN and stage.kind != StageKind.OPEN and lead.owner_id:
        _drain_after_commit(lead.organization)
    return lead


@transaction.atomic
def lead_mark_won(*, lead: Lead, actor, amount: Decimal | None = None, won_on: date | None = None) -> Lead:
    from .stages import stage_for_kind

    if amount is not None and amount < 0:
        raise ServiceError("The amount cannot be negative.", field="amount")
    stage = stage_for_kind(StageKind.WON)
    if stage is None:
        raise ServiceError("Your pipeline has no won stage; add one first.", field="stage")
    lead.won_amount = (
        amount if amount is not None else (lead.won_amount if lead.won_amount is not None else lead.deal_value)
    )
    lead.won_on = won_on or timezone.localdate()
    lead.save(update_fields=["won_amount", "won_on", "updated_at"])
    if lead.stage_id != stage.pk:
        lead_change_stage(lead=lead, stage=stage, actor=actor)
    else:
        activity_record(lead=lead, kind=ActivityKind.WON, actor=actor, message=f"Won {lead.won_amount or ''}".strip())
    return lead


@transaction.atomic
def lead_mark_lost(*, lead: Lead, actor, reason: str) -> Lead:
    from .stages import stage_for_kind

    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why the lead was lost.", field="reason")
    stage = stage_for_kind(StageKind.LOST)
    if stage is None:
        raise ServiceError("Your pipeline has no lost stage; add one first.", field="stage")
    lead.lost_reason = reason[:255]
    lead.save(update_fields=["lost_reason", "updated_at"])
    if lead.stage_id != stage.pk:
        lead_change_stage(lead=lead, stage=stage, actor=actor, lost_reason=reason)
    else:
        activity_record(lead=lead, kind=ActivityKind.LOST, actor=actor, message=reason)
    return lead


def assignable_membership(*, organization, user) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).exclude(role=Role.VIEWER).first()
    if membership is None:
        raise ServiceError(
            "Leads can be assigned to agents, managers, admins and owners of this organization.", field="owner"
        )
    return membership


@transaction.atomic
def lead_assign(*, lead: Lead, owner, actor, automatic: bool = False) -> Lead:
    """Give the lead to ``owner`` (``None`` puts it back in the unassigned queue)."""
    if owner is not None:
        assignable_membership(organization=lead.organization, user=owner)
    if lead.owner_id == (owner.pk if owner else None):
        return lead
    previous_owner_id = lead.owner_id
    lead.owner = owner
    lead.assigned_at = timezone.now() if owner else None
    lead.save(update_fields=["owner", "assigned_at", "updated_at"])
    if owner is None:
        activity_record(lead=lead, kind=ActivityKind.UNASSIGNED, actor=actor, message="Back in the unassigned queue")
    else:
        how = "automatically" if automatic else f"by {actor.display_name}" if actor else ""
        activity_record(
            lead=lead,
            kind=ActivityKind.ASSIGNED,
            actor=actor,
            message=f"Assigned to {owner.display_name} {how}".strip(),
            data={"owner_id": owner.pk, "automatic": automatic},
        )
        publish_to_user(owner, "lead.assigned", lead_summary(lead))
    _publish_change(lead)
    # Unassigning is announced too (the lead's owner is then null), so receivers mirror the queue.
    outbox_publish(
        organization=lead.organization,
        topic="lead.assigned",
        payload={"lead_id": lead.pk, "previous_owner_id": previous_owner_id, "automatic": automatic},
    )
    if previous_owner_id and lead.stage.kind == StageKind.OPEN:
        _drain_after_commit(lead.organization)
    return lead


def _drain_after_commit(organization) -> None:
    from ..tasks import drain_assignment_queue

    transaction.on_commit(lambda: drain_assignment_queue.delay(organization.pk))


@transaction.atomic
def lead_add_note(*, lead: Lead, author, body: str) -> LeadNote:
    body = (body or "").strip()
    if not body:
        raise ServiceError("Write something first.", field="body")
    note = LeadNote.objects.create(organization=lead.organization, lead=lead, author=author, body=body[:10000])
    activity_record(lead=lead, kind=ActivityKind.NOTE, actor=author, message=body[:200], data={"note_id": note.pk})
    publish(lead.organization, "lead.note_added", {"id": lead.pk, "note_id": note.pk})
    return note


def checked_tags(value, *, field: str = "tags") -> list[str]:
    """Tags cleaned as at intake; too many (or not a list) is the caller's input error."""
    try:
        return clean_tags(list(value) if isinstance(value, list | tuple | set) else value)
    except NormalizationError as error:
        raise ServiceError(str(error), field=field) from None


@transaction.atomic
def lead_set_tags(*, lead: Lead, actor, add=(), remove=()) -> Lead:
    add, remove = checked_tags(add), set(checked_tags(remove))
    tags = [t for t in lead.tags if t not in remove]
    tags += [t for t in add if t not in tags]
    checked_tags(tags)  # enforces the maximum
    if tags != lead.tags:
        added, removed = sorted(set(tags) - set(lead.tags)), sorted(set(lead.tags) - set(tags))
        lead.tags = tags
        lead.save(update_fields=["tags", "updated_at"])
        parts = ([f"+{', '.join(added)}"] if added else []) + ([f"−{', '.join(removed)}"] if removed else [])
        activity_record(
            lead=lead,
            kind=ActivityKind.TAGGED,
            actor=actor,
            message=" ".join(parts),
            data={"added": added, "removed": removed},
        )
        _publish_change(lead)
        outbox_publish(
            organization=lead.organization,
            topic="lead.updated",
            payload={"lead_id": lead.pk, "changed_fields": ["tags"]},
        )
    return lead


@transaction.atomic
def lead_delete(*, lead: Lead, actor, request=None) -> None:
    audit_record(
        organization=lead.organization,
        action="lead.deleted",
        actor=actor,
        target=lead,
        request=request,
        changes={"name": [lead.display_name, None]},
    )
    if lead.duplicate_of_id:
        from django.db.models import F

        Lead.objects.filter(pk=lead.duplicate_of_id, duplicate_count__gt=0).update(
            duplicate_count=F("duplicate_count") - 1
        )
    had_open_owner = lead.owner_id and lead.stage.kind == StageKind.OPEN
    publish(lead.organization, "lead.deleted", {"id": lead.pk})
    leads_changed.send(sender=Lead, organization_id=lead.organization_id, received_at=[lead.received_at])
    lead.delete()
    if had_open_owner:
        _drain_after_commit(lead.organization)


def lead_mark_contacted(*, lead: Lead, at=None) -> None:
    """The first outbound touch (call, message): records speed to lead once."""
    if lead.first_contacted_at is None:
        at = at or timezone.now()
        Lead.objects.filter(pk=lead.pk, first_contacted_at__isnull=True).update(first_contacted_at=at)
        lead.first_contacted_at = at
        leads_changed.send(sender=Lead, organization_id=lead.organization_id, received_at=[lead.received_at])
        activity_record(lead=lead, kind=ActivityKind.CONTACTED, message="First contact")


@transaction.atomic
def leads_bulk_action(
    *, organization, queryset, actor, action: str, ids: list[int], value: Any = None, request=None
) -> int:
    """Apply one action to many leads (those of ``ids`` that ``queryset`` lets the actor see). Returns how many."""
    if action not in BULK_ACTIONS:
        raise ServiceError(f"Unknown action; use one of {', '.join(BULK_ACTIONS)}.", field="action")
    if not ids:
        raise ServiceError("Select at least one lead.", field="ids")
    if len(ids) > MAX_BULK:
        raise ServiceError(f"At most {MAX_BULK} leads at a time.", field="ids")
    leads = list(queryset.filter(pk__in=ids).select_related("stage", "organization").select_for_update(of=("self",)))
    if action == "stage":
        stage = PipelineStage.objects.filter(pk=value).first() if str(value or "").isdigit() else None
        if stage is None:
            raise ServiceError("Pick one of your pipeline's stages.", field="value")
        for lead in leads:
            lead_change_stage(lead=lead, stage=stage, actor=actor)
        detail = {"stage": stage.name}
    elif action == "assign":
        owner = None
        if value not in (None, ""):
            membership = (
                Membership.objects.filter(user_id=value).select_related("user").first()
                if str(value).isdigit()
                else None
            )
            if membership is None:
                raise ServiceError("Pick a member of this organization.", field="value")
            owner = membership.user
            assignable_membership(organization=organization, user=owner)
        for lead in leads:
            lead_assign(lead=lead, owner=owner, actor=actor)
        detail = {"owner": owner.email if owner else None}
    elif action in ("tag", "untag"):
        tags = checked_tags(value, field="value")
        if not tags:
            raise ServiceError("Give at least one tag.", field="value")
        for lead in leads:
            lead_set_tags(lead=lead, actor=actor, **({"add": tags} if action == "tag" else {"remove": tags}))
        detail = {"tags": tags}
    else:
        for lead in leads:
            lead_delete(lead=lead, actor=actor, request=request)
        detail = {}
    audit_record(
        organization=organization,
        action=f"leads.bulk_{action}",
        actor=actor,
        request=request,
        changes={"leads": [None, [lead.pk for lead in leads]], **{k: [None, v] for k, v in detail.items()}},
    )
    return len(leads)
