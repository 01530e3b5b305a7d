"""The lead timeline."""

from __future__ import annotations

from typing import Any

from ..models import Lead, LeadActivity


def activity_record(
    *, lead: Lead, kind: str, message: str = "", actor=None, data: dict[str, Any] | None = None
) -> LeadActivity:
    return LeadActivity.objects.create(
        organization_id=lead.organization_id, lead=lead, kind=kind, actor=actor, message=message[:500], data=data or {}
    )
