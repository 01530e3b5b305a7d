"""The JSON LeadFlow sends in outbound webhooks: one envelope, and one stable shape per kind of object.

Receivers write code against these shapes, so they change only by adding keys. They are deliberately separate from
the live pages' ``lead_summary``, which may change whenever a page needs something else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from leads.models import Lead


def webhook_envelope(*, event_type: str, data: dict[str, Any], timestamp: datetime | None = None) -> dict[str, Any]:
    """``{"type", "timestamp", "data"}`` as Standard Webhooks recommends."""
    return {"type": event_type, "timestamp": (timestamp or timezone.now()).isoformat(), "data": data}


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def webhook_lead_data(lead: Lead) -> dict[str, Any]:
    """A lead as webhooks describe it. Expects ``stage`` and ``owner`` loaded (select_related) to stay query-free."""
    owner = lead.owner if lead.owner_id else None
    return {
        "id": lead.pk,
        "name": lead.display_name,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "email": lead.email,
        "phone": lead.phone,
        "company": lead.company,
        "job_title": lead.job_title,
        "city": lead.city,
        "country": lead.country,
        "source": lead.source,
        "external_id": lead.external_id,
        "stage": {"id": lead.stage_id, "name": lead.stage.name, "kind": lead.stage.kind} if lead.stage_id else None,
        "owner": {"id": owner.pk, "email": owner.email, "name": owner.get_full_name()} if owner else None,
        "score": lead.score,
        "grade": lead.grade,
        "tags": list(lead.tags),
        "custom": lead.custom,
        "deal_value": str(lead.deal_value) if lead.deal_value is not None else None,
        "utm": {
            "source": lead.utm_source,
            "medium": lead.utm_medium,
            "campaign": lead.utm_campaign,
            "term": lead.utm_term,
            "content": lead.utm_content,
        },
        "duplicate_of": lead.duplicate_of_id,
        "received_at": _iso(lead.received_at),
        "updated_at": _iso(lead.updated_at),
    }
