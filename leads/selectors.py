"""Reading leads: who sees which, search, the unassigned queue, and dashboard figures."""

from __future__ import annotations

import functools
import re
from contextlib import contextmanager
from datetime import timedelta
from statistics import median
from zoneinfo import ZoneInfo

from django.contrib.postgres.search import SearchQuery
from django.db import connection, transaction
from django.db.models import Count, F, Func, Q, QuerySet
from django.utils import timezone

from accounts.constants import Role
from accounts.models import User
from leadflow.caching import ProcessCache

from .constants import LeadSource
from .models import Lead, LeadActivity, PipelineStage

_DIGITS = re.compile(r"\D")


def leads_visible_to(membership) -> QuerySet[Lead]:
    """Agents see the leads assigned to them; viewers (read-only), managers and above, and API keys
    (``membership=None``) see all."""
    queryset = Lead.objects.all()
    if membership is not None and membership.role == Role.AGENT:
        queryset = queryset.filter(owner_id=membership.user_id)
    return queryset


def lead_search(queryset: QuerySet[Lead], text: str) -> QuerySet[Lead]:
    """Every word appears in the lead's name, email, phone or company (substrings, any order), or the text is
    its city; a phone number typed with spaces or dashes is matched by its digits.

    Words of three characters or more go through the trigram index on ``search_text``; a query of only shorter
    words uses the word index (``search_vector``). The trigram condition is deliberately not OR-ed with the word
    index: PostgreSQL estimates a word it has no statistics for (every email, phone and rare name) at ~0.4 % of
    the table, so with that OR it walks the newest-first index through all million rows looking for 51
    matches (0.6 s); the trigram estimate alone lets it fetch the few matches and sort them (a few ms).
    """
    text = " ".join(text.split())[:100]
    if not text:
        return queryset
    needle = text.lower()
    digits = _DIGITS.sub("", text)
    if len(digits) >= 5 and len(digits) >= len(needle.replace(" ", "")) - 3:
        words = [digits]  # a phone number typed with spaces or dashes
    else:
        words = list(dict.fromkeys(needle.split()))
    if not any(len(word) >= 3 for word in words):
        return queryset.filter(search_vector=SearchQuery(text, config="simple", search_type="websearch"))
    condition = Q()
    for word in words:
        condition &= Q(search_text__contains=word)
    return queryset.filter(condition | Q(city__iexact=text))


_DOT_INSIDE = re.compile(r"\.\w")


def search_is_a_needle(text: str) -> bool:
    """Whether a search will match few leads: an email, a phone fragment, several words.

    PostgreSQL cannot estimate trigram matches well and, asked for the newest 50, walks the newest-first index
    hoping to meet matches soon; for a needle that means reading the whole table (0.6 s at a million leads).
    For those we ask it to collect the matches from the GIN indexes first (see ``search_plan``). A single common
    word keeps the default plan, which finds 50 recent matches in a few index pages.
    """
    text = " ".join(text.split())
    # A dot counts only with something after it ("riya.sha"): a trailing one ("green.") is as common as the word
    # before it, and forcing the GIN path there read 20,000 heap pages (110 ms) where the default plan took 3 ms.
    return bool(text) and (
        any(ch.isdigit() or ch == "@" for ch in text) or " " in text or bool(_DOT_INSIDE.search(text))
    )


# A tag filter whose leads PostgreSQL estimates at no more than this many rows collects them from the tags' GIN
# index first. Measured at a million leads: 1,900 rows took 4 ms that way against 32 ms walking the newest-first
# index, 3,100 rows 6.5 against 14 ms; at 4,800 rows the walk won (10-15 ms against 21-25 ms), and at 9,700 rows by
# more (7-21 against 51-63 ms). Below a few thousand rows either plan is fast, so small tables change nothing.
RARE_TAG_ROWS = 3500
_tag_statistics: ProcessCache[tuple[dict[str, float], float]] = ProcessCache(600)


def _tag_statistics_load() -> tuple[dict[str, float], float] | None:
    """Each common tag's share of leads (``most_common_elems`` of ``tags`` in PostgreSQL's statistics; a tag not
    listed is rarer than the rarest one listed) and the table's estimated row count."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples FROM pg_stats s "
            "JOIN pg_class c ON c.oid = to_regclass(quote_ident(s.schemaname) || '.' || quote_ident(s.tablename)) "
            "WHERE s.schemaname = current_schema() AND s.tablename = %s AND s.attname = 'tags'",
            [Lead._meta.db_table],
        )
        row = cursor.fetchone()
    if not row or not row[0] or not row[2] or row[2] < 0:
        return None
    return dict(zip(row[0], row[1], strict=False)), float(row[2])


def tags_are_rare(tags: list[str]) -> bool:
    """Whether leads with all of ``tags`` are few enough to collect from the GIN index and sort, as far as the
    table's statistics tell.

    For a rare tag PostgreSQL walks the newest-first index hoping to meet 50 matches soon, and reads far more rows
    than there are matches; for a common tag the walk is the right plan. Without statistics (a new table) the
    default plan is kept. The shares are the whole table's, across organizations: an estimate, which is all a
    plan choice needs.
    """
    statistics = _tag_statistics.get("tags", _tag_statistics_load)
    if not tags or statistics is None:
        return False
    shares, rows = statistics
    return min(shares.get(tag, 0.0) for tag in tags) * rows <= RARE_TAG_ROWS


def requested_tags(value: str) -> list[str]:
    return [tag.strip().lower() for tag in (value or "").split(",") if tag.strip()]


@contextmanager
def search_plan(text: str, *, tags: str = ""):
    """Run the list queries inside this block with the plan that suits the search ``text`` and the ``tags``
    filter (comma-separated, as the list's ``tag`` parameter)."""
    if not search_is_a_needle(text or "") and not tags_are_rare(requested_tags(tags)):
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Only for this transaction: no plain index scans, so the GIN bitmaps are used and the few matches
            # sorted (a bitmap scan on the newest-first index stays possible for the page's own ordering).
            cursor.execute("SET LOCAL enable_indexscan = off")
        yield


def lead_timeline(lead: Lead) -> QuerySet[LeadActivity]:
    return LeadActivity.objects.filter(lead=lead).select_related("actor").order_by("-created_at", "-id")


def pipeline_stages() -> list[PipelineStage]:
    return list(PipelineStage.objects.order_by("position", "id"))


# Tag suggestions come from the newest leads: counting over millions of rows would be slow and no more useful.
TAG_SAMPLE = 5000


def all_tags(queryset: QuerySet[Lead] | None = None, *, limit: int = 200) -> list[str]:
    """Tags in use, most used first (among the newest leads)."""
    queryset = queryset if queryset is not None else Lead.objects.all()
    recent = queryset.order_by("-received_at", "-id").values("pk")[:TAG_SAMPLE]
    rows = (
        Lead.objects.filter(pk__in=recent)
        .annotate(tag=Func(F("tags"), function="unnest"))
        .values("tag")
        .annotate(n=Count("id"))
        .order_by("-n", "tag")[:limit]
    )
    return [row["tag"] for row in rows]


def dashboard_figures(organization, queryset: QuerySet[Lead]) -> dict:
    """Leads today and this week (organization time), by source over 30 days, and median speed to lead."""
    zone = ZoneInfo(organization.timezone)
    now = timezone.now()
    local = timezone.localtime(now, zone)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    month_ago = now - timedelta(days=30)
    originals = queryset.filter(duplicate_of__isnull=True)
    counts = originals.aggregate(
        today=Count("id", filter=Q(received_at__gte=today)),
        week=Count("id", filter=Q(received_at__gte=week)),
        month=Count("id", filter=Q(received_at__gte=month_ago)),
        unassigned=Count("id", filter=Q(owner__isnull=True, stage__kind="open")),
    )
    labels = dict(LeadSource.choices)
    by_source = [
        {"source": row["source"], "label": labels.get(row["source"], row["source"]), "count": row["n"]}
        for row in originals.filter(received_at__gte=month_ago).values("source").annotate(n=Count("id")).order_by("-n")
    ]
    delays = [
        (contacted - received).total_seconds()
        for received, contacted in originals.filter(received_at__gte=month_ago, first_contacted_at__isnull=False)
        .order_by("-received_at")
        .values_list("received_at", "first_contacted_at")[:2000]
    ]
    return {
        **counts,
        "by_source": by_source,
        "median_speed_to_lead_seconds": round(median(delays)) if delays else None,
        "contacted_sample": len(delays),
    }


def leads_of_events(events) -> dict[int, Lead]:
    """Lead id → lead (with its stage and owner) for one organization's outbox events whose payload names a
    ``lead_id``; leads deleted since are absent. Read once per batch: the handlers of an ``EventBatch`` share it.

    Every new lead passes through here. Its columns are read by hand-written SQL and its stage from the
    organization's stages (a few rows, read once for the batch) instead of a three-table ``select_related``, which
    cost several times what the handlers do with the leads (the ORM builds that query afresh each time).
    """
    shared = getattr(events, "shared", None)
    if shared is not None and "leads" in shared:
        return shared["leads"]
    leads: dict[int, Lead] = {}
    if events:
        organization = events[0].organization
        found = Lead.objects.unscoped().raw(
            _leads_of_events_sql(), {"organization": organization.pk, "ids": [e.payload["lead_id"] for e in events]}
        )
        leads = {lead.pk: lead for lead in found}
        stages = {stage.pk: stage for stage in PipelineStage.objects.unscoped().filter(organization=organization)}
        owner_ids = {lead.owner_id for lead in leads.values() if lead.owner_id}
        owners = User.objects.in_bulk(owner_ids) if owner_ids else {}
        for lead in leads.values():
            lead.organization = organization  # the batch's one organization, already loaded
            lead.stage = stages[lead.stage_id]
            lead.owner = owners.get(lead.owner_id)
    if shared is not None:
        shared["leads"] = leads
    return leads


@functools.cache
def _leads_of_events_sql() -> str:
    # Every column but the search ones (the biggest, and no handler reads them), which stay deferred.
    columns = [
        connection.ops.quote_name(field.column)
        for field in Lead._meta.concrete_fields
        if field.name not in ("search_vector", "search_text")
    ]
    table = connection.ops.quote_name(Lead._meta.db_table)
    return (
        f"SELECT {', '.join(columns)} FROM {table} "  # noqa: S608 - identifiers from the model, values bound
        "WHERE organization_id = %(organization)s AND id = ANY(%(ids)s)"
    )
