"""Reads the lead pages need on top of :mod:`leads.selectors`: keyset pages, board columns, dashboard cards.

Every function takes an already visible (and scoped) queryset, so the agent rule lives in one place
(``leads_visible_to``) and these only shape what it returns.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from accounts.constants import Role
from accounts.models import Membership

from .models import Lead, LeadImport, PipelineStage
from .selectors import all_tags, dashboard_figures, leads_visible_to
from .services.quota import usage_this_month

LIST_PAGE_SIZE = 50
BOARD_COLUMN_SIZE = 50
# Tag suggestions come from the newest leads only: counting tags over every lead is a full scan on big tables.
TAG_SAMPLE = 2000


# Keyset pagination -----------------------------------------------------------------------------------------------


def encode_cursor(lead: Lead) -> str:
    raw = f"{lead.received_at.isoformat()}|{lead.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[datetime, int] | None:
    """``(received_at, id)`` of the last lead of the previous page, or None for a missing or tampered cursor."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        stamp, _, pk = raw.rpartition("|")
        received_at = datetime.fromisoformat(stamp)
        if received_at.tzinfo is None or not pk.isdigit():
            return None
        return received_at, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


@dataclass
class LeadPage:
    leads: list[Lead]
    next_cursor: str | None
    is_first: bool


def leads_page(queryset: QuerySet[Lead], *, cursor: str | None, size: int = LIST_PAGE_SIZE) -> LeadPage:
    """One page, newest first, after ``cursor``: a range scan on the (organization, received_at, id) index —
    no OFFSET and no COUNT(*), so page 1,000 costs what page 1 does."""
    position = decode_cursor(cursor)
    queryset = queryset.order_by("-received_at", "-id")
    if position is not None:
        received_at, pk = position
        queryset = queryset.filter(Q(received_at__lt=received_at) | Q(received_at=received_at, pk__lt=pk))
    leads = list(queryset[: size + 1])  # one more tells whether an older page exists
    has_more = len(leads) > size
    leads = leads[:size]
    return LeadPage(
        leads=leads,
        next_cursor=encode_cursor(leads[-1]) if has_more else None,
        is_first=position is None,
    )


def recent_tags(queryset: QuerySet[Lead], *, limit: int = 100) -> list[str]:
    newest = queryset.order_by("-received_at", "-id").values("pk")[:TAG_SAMPLE]
    return all_tags(Lead.objects.filter(pk__in=Subquery(newest)), limit=limit)


def assignable_members() -> QuerySet[Membership]:
    """Who a lead can be given to (the service refuses viewers too)."""
    return (
        Membership.objects.exclude(role=Role.VIEWER).select_related("user").order_by("user__first_name", "user__email")
    )


# Board -------------------------------------------------------------------------------------------------------------


@dataclass
class BoardColumn:
    stage: PipelineStage
    leads: list[Lead]
    more: bool

    @property
    def count_label(self) -> str:
        return f"{len(self.leads)}+" if self.more else str(len(self.leads))


def board_columns(
    queryset: QuerySet[Lead], stages: list[PipelineStage], *, per_column: int = BOARD_COLUMN_SIZE
) -> list[BoardColumn]:
    """The newest ``per_column`` leads of every stage in one query (a window per stage), plus whether more exist."""
    ranked = (
        queryset.annotate(
            board_rank=Window(
                RowNumber(), partition_by=[F("stage_id")], order_by=[F("received_at").desc(), F("id").desc()]
            )
        )
        .filter(board_rank__lte=per_column + 1)
        .select_related("owner")
        .order_by("stage_id", "board_rank")
    )
    by_stage: dict[int, list[Lead]] = {}
    for lead in ranked:
        by_stage.setdefault(lead.stage_id, []).append(lead)
    columns = []
    for stage in stages:
        leads = by_stage.get(stage.pk, [])
        for lead in leads:
            lead.stage = stage  # the card needs it; saves a join
        columns.append(BoardColumn(stage=stage, leads=leads[:per_column], more=len(leads) > per_column))
    return columns


# Imports -----------------------------------------------------------------------------------------------------------


def recent_imports(*, limit: int = 10) -> QuerySet[LeadImport]:
    # The file itself can be 20 MB: lists never load it.
    return LeadImport.objects.defer("content").select_related("created_by").order_by("-created_at", "-id")[:limit]


# Dashboard ---------------------------------------------------------------------------------------------------------


def duration_words(seconds: int | None) -> str:
    """45 s, 12 min, 3 h 5 min, 2 d 4 h: the two largest units are all a person reads."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def dashboard_lead_cards(*, organization, membership) -> dict:
    """The dashboard's lead figures over what this member may see, and the organization's quota this month."""
    figures = dashboard_figures(organization, leads_visible_to(membership))
    top = max((row["count"] for row in figures["by_source"]), default=0)
    by_source = [{**row, "percent": round(100 * row["count"] / top) if top else 0} for row in figures["by_source"]]
    return {
        **figures,
        "by_source": by_source,
        "speed_to_lead": duration_words(figures["median_speed_to_lead_seconds"]),
        "usage": usage_this_month(organization),
    }
