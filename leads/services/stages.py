"""Each organization's pipeline: default stages, and changes that keep at least one open stage."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope

from ..constants import DEFAULT_STAGES, StageKind
from ..models import PipelineStage
from ..signals import leads_changed


def stages_ensure_default(*, organization) -> list[PipelineStage]:
    """The organization's stages, creating the default pipeline the first time."""
    with organization_scope(organization):
        stages = list(PipelineStage.objects.all())
        if stages:
            return stages
        PipelineStage.objects.bulk_create(
            [
                PipelineStage(organization=organization, name=name, kind=kind, color=color, position=position)
                for position, (name, kind, color) in enumerate(DEFAULT_STAGES)
            ],
            ignore_conflicts=True,
        )
        return list(PipelineStage.objects.all())


def stage_for_kind(kind: str) -> PipelineStage | None:
    return PipelineStage.objects.filter(kind=kind).order_by("position", "id").first()


@transaction.atomic
def stage_create(*, organization, name: str, kind: str = StageKind.OPEN, color: str = "#6366f1") -> PipelineStage:
    name = name.strip()
    if not name:
        raise ServiceError("Give the stage a name.", field="name")
    if PipelineStage.objects.filter(name__iexact=name).exists():
        raise ServiceError("There is already a stage with this name.", field="name")
    position = (PipelineStage.objects.aggregate(top=Max("position"))["top"] or 0) + 1
    return PipelineStage.objects.create(organization=organization, name=name, kind=kind, color=color, position=position)


@transaction.atomic
def stage_update(*, stage: PipelineStage, **fields) -> PipelineStage:
    if "name" in fields:
        name = fields["name"].strip()
        if not name:
            raise ServiceError("Give the stage a name.", field="name")
        if PipelineStage.objects.filter(name__iexact=name).exclude(pk=stage.pk).exists():
            raise ServiceError("There is already a stage with this name.", field="name")
        fields["name"] = name
    if fields.get("kind", stage.kind) != StageKind.OPEN and stage.kind == StageKind.OPEN:
        _ensure_another_open_stage(stage)
    for name, value in fields.items():
        setattr(stage, name, value)
    stage.save()
    return stage


@transaction.atomic
def stage_delete(*, stage: PipelineStage, move_to: PipelineStage | None = None) -> None:
    """Delete a stage; its leads move to ``move_to`` (or the first open stage)."""
    if stage.kind == StageKind.OPEN:
        _ensure_another_open_stage(stage)
    target = (
        move_to or PipelineStage.objects.filter(kind=StageKind.OPEN).exclude(pk=stage.pk).order_by("position").first()
    )
    if target is None or target.pk == stage.pk:
        raise ServiceError("Choose another stage for this stage's leads.", field="move_to")
    stage.leads.update(stage=target)
    stage.delete()
    leads_changed.send(sender=PipelineStage, organization_id=stage.organization_id, received_at=None)


@transaction.atomic
def stages_reorder(*, ordered_ids: list[int]) -> None:
    stages = {stage.pk: stage for stage in PipelineStage.objects.select_for_update()}
    if set(ordered_ids) != set(stages):
        raise ServiceError("Send every stage exactly once.", field="ordered_ids")
    for position, pk in enumerate(ordered_ids):
        stages[pk].position = position
    PipelineStage.objects.bulk_update(stages.values(), ["position"])


def _ensure_another_open_stage(stage: PipelineStage) -> None:
    if not PipelineStage.objects.filter(kind=StageKind.OPEN).exclude(pk=stage.pk).exists():
        raise ServiceError("A pipeline needs at least one open stage for new leads.", field="kind")
