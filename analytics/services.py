"""Keeping the rollups: the beat refresh, the full rebuild, stale days and booked ad spend.

A refresh of an organization recomputes, for each cube, the days of its live window and the days queued as stale,
and then their months; a rebuild recomputes everything. Both run in one transaction per organization under an
advisory lock, so a report never sees half a refresh and two runs never interleave. Recomputing a day means
deleting its rows and inserting them again from the source tables (``analytics.cubes``): whatever changed in the
day, the result equals a rebuild (tested).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Organization

from .cubes import CUBES, Cube
from .models import CampaignSpendDay, RollupStaleDay, RollupState

logger = logging.getLogger(__name__)

# The two-key advisory lock takes two int4s: the namespace is a positive 31-bit number.
_LOCK_NAMESPACE = zlib.crc32(b"analytics-rollups") & 0x7FFFFFFF
CENTS = Decimal("0.01")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local calendar day starts, in UTC."""
    return datetime.combine(day, clock.min, tzinfo=tz).astimezone(UTC)


def local_today(tz: ZoneInfo, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(tz).date()


def live_window_start(cube: Cube, tz: ZoneInfo, now: datetime | None = None) -> date:
    return local_today(tz, now) - timedelta(days=cube.live_days)


def _contiguous(days: Iterable[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


# Stale days ---------------------------------------------------------------------------------------------------------


def days_mark_stale(*, organization_id: int, cube: str, moments: Iterable[datetime], tz_name: str | None = None) -> int:
    """Queue the local days of ``moments`` that lie before the cube's live window (the window is recomputed by every
    refresh anyway, so recent rows cost nothing: no statement at all unless an older row changed)."""
    moments = [moment for moment in moments if moment is not None]
    if not moments:
        return 0
    tz = ZoneInfo(tz_name or _organization_timezone(organization_id))
    window = live_window_start(CUBES[cube], tz)
    days = {moment.astimezone(tz).date() for moment in moments} - {None}
    days = {day for day in days if day < window}
    if not days:
        return 0
    RollupStaleDay.objects.unscoped().bulk_create(
        [RollupStaleDay(organization_id=organization_id, cube=cube, day=day) for day in days], ignore_conflicts=True
    )
    return len(days)


def rollups_request_rebuild(*, organization_id: int) -> None:
    """Every day of the organization, at the next refresh (a stage deleted and its leads moved, leads merged …)."""
    RollupState.objects.unscoped().update_or_create(
        organization_id=organization_id, defaults={"rebuild_requested": True}
    )


_timezones: dict[int, tuple[float, str]] = {}


def organization_timezone_forget(organization_id: int) -> None:
    _timezones.pop(organization_id, None)


def _organization_timezone(organization_id: int) -> str:
    cached = _timezones.get(organization_id)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    name = Organization.objects.filter(pk=organization_id).values_list("timezone", flat=True).first() or "UTC"
    _timezones[organization_id] = (time.monotonic() + 60, name)
    return name


# Recomputing ---------------------------------------------------------------------------------------------------------


def _params(organization: Organization, **extra) -> dict:
    return {"organization": organization.pk, "tz": organization.timezone, **extra}


def _grains_sql(cube: Cube) -> str:
    """Rollup indexes lead with (organization, grain, day): naming every grain lets a span of days be read from
    each grain's run of the index instead of the organization's whole index."""
    return "AND grain = ANY(%s)" if cube.grains else ""


def _grains_params(cube: Cube) -> list:
    return [[grain.bits for grain in cube.grains]] if cube.grains else []


def _recompute_days(cube: Cube, organization: Organization, days: Iterable[date]) -> None:
    tz = ZoneInfo(organization.timezone)
    table = cube.day_model._meta.db_table
    columns = ", ".join(cube.columns)
    with connection.cursor() as cursor:
        for first, last in _contiguous(days):
            cursor.execute(
                f"DELETE FROM {table} WHERE organization_id = %s {_grains_sql(cube)} "  # noqa: S608
                "AND day BETWEEN %s AND %s",
                [organization.pk, *_grains_params(cube), first, last],
            )
            cursor.execute(
                f"INSERT INTO {table} ({columns}) {cube.source_sql(bounded=True)}",
                _params(
                    organization,
                    start=local_midnight(first, tz),
                    end=local_midnight(last + timedelta(days=1), tz),
                ),
            )


def _recompute_months(cube: Cube, organization: Organization, months: Iterable[date] | None) -> None:
    """Month rows summed from the day rows: of ``months`` (first days), or of every month with ``None``."""
    if cube.month_model is None:
        return
    month_table, day_table = cube.month_model._meta.db_table, cube.day_model._meta.db_table
    dimensions = ", ".join(cube.dimensions)
    sums = ", ".join(f"SUM({m})" for m in cube.measures)
    insert = (
        f"INSERT INTO {month_table} ({', '.join(cube.columns)}) "  # noqa: S608
        f"SELECT organization_id, date_trunc('month', day)::date, {dimensions}, {sums} FROM {day_table} "
        "WHERE organization_id = %s {span} GROUP BY organization_id, 2, " + dimensions + " " + cube.order_sql
    )
    with connection.cursor() as cursor:
        if months is None:
            cursor.execute(f"DELETE FROM {month_table} WHERE organization_id = %s", [organization.pk])  # noqa: S608
            cursor.execute(insert.format(span=""), [organization.pk])
            return
        for first in sorted(set(months)):
            end = _next_month(first)
            cursor.execute(
                f"DELETE FROM {month_table} WHERE organization_id = %s {_grains_sql(cube)} "  # noqa: S608
                "AND day >= %s AND day < %s",
                [organization.pk, *_grains_params(cube), first, end],
            )
            cursor.execute(
                insert.format(span=f"{_grains_sql(cube)} AND day >= %s AND day < %s"),
                [organization.pk, *_grains_params(cube), first, end],
            )


def _rebuild_cube(cube: Cube, organization: Organization) -> None:
    table = cube.day_model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s", [organization.pk])  # noqa: S608
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(cube.columns)}) {cube.source_sql(bounded=False)}",
            _params(organization),
        )
    _recompute_months(cube, organization, None)


def _locked(organization_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, organization_id])
        return cursor.fetchone()[0]


# Ad spend ------------------------------------------------------------------------------------------------------------


def spend_book(*, organization: Organization, now: datetime | None = None) -> int:
    """Book each campaign's change of recorded spend (``Campaign.ad_spend``) since the last refresh to today; the
    spend a campaign already had when first seen is spread evenly over the days since its creation. Returns how
    many campaigns changed."""
    from campaigns.models import Campaign

    tz = ZoneInfo(organization.timezone)
    today = local_today(tz, now)
    booked = dict(
        CampaignSpendDay.objects.unscoped()
        .filter(organization_id=organization.pk)
        .values("campaign_id")
        .annotate(total=Sum("amount"))
        .values_list("campaign_id", "total")
    )
    changed = 0
    for campaign_id, spend, created_at in (
        Campaign.objects.unscoped().filter(organization_id=organization.pk).values_list("pk", "ad_spend", "created_at")
    ):
        delta = spend - booked.get(campaign_id, Decimal("0"))
        if campaign_id in booked:
            if delta:
                changed += 1
                _spend_add(organization.pk, campaign_id, {today: delta})
            continue
        changed += 1
        if not delta:
            # Seen with no spend yet: a zero row remembers it, so later spend is booked to its own day.
            _spend_add(organization.pk, campaign_id, {today: delta})
            continue
        first_day = min(created_at.astimezone(tz).date(), today)
        days = (today - first_day).days + 1
        share = (delta / days).quantize(CENTS)
        amounts = {first_day + timedelta(days=n): share for n in range(days)}
        amounts[today] += delta - share * days  # the rounding remainder, so the days add up to the spend exactly
        _spend_add(organization.pk, campaign_id, amounts)
    return changed


def _spend_add(organization_id: int, campaign_id: int, amounts: dict[date, Decimal]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {CampaignSpendDay._meta.db_table} (organization_id, campaign_id, day, amount) "  # noqa: S608
            "VALUES (%s, %s, %s, %s) ON CONFLICT (organization_id, campaign_id, day) "
            "DO UPDATE SET amount = EXCLUDED.amount + "
            f"{CampaignSpendDay._meta.db_table}.amount",
            [(organization_id, campaign_id, day, amount) for day, amount in amounts.items()],
        )


# Entry points ---------------------------------------------------------------------------------------------------------


def rollups_refresh(*, organization: Organization, now: datetime | None = None) -> dict | None:
    """Recompute the live windows and the stale days of ``organization`` (all of it when a rebuild is due: never
    built, asked for, or the organization's time zone changed). ``None`` when another run holds it."""
    began = time.perf_counter()
    now = now or timezone.now()
    tz = ZoneInfo(organization.timezone)
    with transaction.atomic():
        if not _locked(organization.pk):
            return None
        state, _ = RollupState.objects.unscoped().select_for_update().get_or_create(organization_id=organization.pk)
        if state.rebuild_requested or state.rebuilt_at is None or state.timezone != organization.timezone:
            return _rebuild(organization, state, began=began, now=now)
        stale = list(
            RollupStaleDay.objects.unscoped().filter(organization_id=organization.pk).values_list("pk", "cube", "day")
        )
        refreshed = {}
        for cube in CUBES.values():
            window = live_window_start(cube, tz, now)
            days = {window + timedelta(days=n) for n in range((local_today(tz, now) - window).days + 1)}
            days |= {day for _, name, day in stale if name == cube.name}
            _recompute_days(cube, organization, days)
            _recompute_months(cube, organization, {_month_start(day) for day in days})
            refreshed[cube.name] = len(days)
        if stale:
            RollupStaleDay.objects.unscoped().filter(pk__in=[pk for pk, _, _ in stale]).delete()
        spend_book(organization=organization, now=now)
        state.refreshed_at = now
        state.last_refresh_ms = round(1000 * (time.perf_counter() - began))
        state.save(update_fields=["refreshed_at", "last_refresh_ms"])
    return {"organization": organization.pk, "rebuilt": False, "days": refreshed, "ms": state.last_refresh_ms}


def rollups_rebuild(*, organization: Organization, now: datetime | None = None) -> dict:
    """Every day of every cube of ``organization`` from the source tables (``manage.py rebuild_analytics``)."""
    began = time.perf_counter()
    with transaction.atomic():
        # Waits for a refresh in progress rather than skipping: a rebuild is asked for on purpose.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, organization.pk])
        state, _ = RollupState.objects.unscoped().select_for_update().get_or_create(organization_id=organization.pk)
        return _rebuild(organization, state, began=began, now=now or timezone.now())


def _rebuild(organization: Organization, state: RollupState, *, began: float, now: datetime) -> dict:
    timings = {}
    for cube in CUBES.values():
        t = time.perf_counter()
        _rebuild_cube(cube, organization)
        timings[cube.name] = round(1000 * (time.perf_counter() - t))
    RollupStaleDay.objects.unscoped().filter(organization_id=organization.pk).delete()
    if state.timezone and state.timezone != organization.timezone:
        # Spend was booked to the old zone's days; rebook it from the campaigns' totals.
        CampaignSpendDay.objects.unscoped().filter(organization_id=organization.pk).delete()
    spend_book(organization=organization, now=now)
    state.timezone = organization.timezone
    state.rebuild_requested = False
    state.rebuilt_at = state.refreshed_at = now
    state.last_refresh_ms = round(1000 * (time.perf_counter() - began))
    state.save()
    return {"organization": organization.pk, "rebuilt": True, "ms_by_cube": timings, "ms": state.last_refresh_ms}


def rollups_refresh_all(*, now: datetime | None = None) -> list[dict]:
    """Beat's run: every active organization, one transaction each (a failure is logged and the others go on)."""
    results = []
    for organization in Organization.objects.filter(is_active=True).order_by("pk"):
        try:
            result = rollups_refresh(organization=organization, now=now)
        except Exception:
            logger.exception("analytics refresh failed for organization %s", organization.pk)
            continue
        if result is not None:
            results.append(result)
    return results
