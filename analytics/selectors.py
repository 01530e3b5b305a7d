"""The reports, read from the rollups (``analytics.models``) of the organization in scope.

Every report takes one ``ReportFilters`` (a date range of the organization's calendar days, inclusive, and the
filters it understands) and returns a ``Report``: columns, rows, totals and the chart's series, which the pages,
the API and the CSV downloads all render as they are. A range is read from month rows for the whole months it
covers and from day rows for the days at either end, so a year costs twelve month groups and a few dozen days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import F, Max, Q, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from accounts.models import User
from leads.constants import LeadSource, StageKind
from leads.models import PipelineStage
from messaging.constants import Direction, MessageChannel

from .cubes import LEAD_GRAINS, SALE_GRAINS, SPEED_BINS, grain_for
from .models import (
    CampaignSpendDay,
    LeadDayRollup,
    LeadMonthRollup,
    MessageDayRollup,
    RollupState,
    SaleDayRollup,
    SaleMonthRollup,
    SubmissionDayRollup,
)

ZERO = Decimal("0")
GRANULARITIES = ("day", "week", "month")
# A chart of more series than this is unreadable: the largest are drawn, the rest summed as "Other".
MAX_SERIES = 8


@dataclass(frozen=True)
class ReportFilters:
    date_from: date
    date_to: date
    granularity: str = "day"
    group_by: str = ""
    source: str = ""
    campaign: int | None = None
    stage: int | None = None
    owner: int | None = None  # 0: unassigned
    buyer: int | None = None
    supplier: int | None = None
    channel: str = ""

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1


@dataclass
class Report:
    name: str
    title: str
    columns: list[tuple[str, str]]  # (key, label), in order
    rows: list[dict]
    totals: dict = field(default_factory=dict)
    chart: dict = field(default_factory=dict)  # {"type", "labels", "datasets": [{"label", "data"}], "stacked"?}
    notes: list[str] = field(default_factory=list)


# Reading the cubes ---------------------------------------------------------------------------------------------------


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def split_range(date_from: date, date_to: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The whole months inside [date_from, date_to] (as [first month, first day after]) and the days outside them."""
    first_full = date_from if date_from.day == 1 else _next_month(date_from)
    after = date_to + timedelta(days=1)
    end_full = after if after.day == 1 else after.replace(day=1)
    if first_full >= end_full:
        return None, [(date_from, date_to)]
    edges = []
    if date_from < first_full:
        edges.append((date_from, first_full - timedelta(days=1)))
    if end_full <= date_to:
        edges.append((end_full, date_to))
    return (first_full, end_full), edges


def _period_expression(granularity: str):
    return {"day": F("day"), "week": TruncWeek("day"), "month": TruncMonth("day")}[granularity]


def _sums(
    day_model,
    month_model,
    filters: ReportFilters,
    *,
    where: dict,
    group: Iterable[str],
    measures: Iterable[str],
    granularity: str | None = None,
) -> dict[tuple, dict]:
    """``{(period?, *group values): {measure: sum}}`` over the range: one statement for the whole months (from
    ``month_model``; never for daily or weekly series, months do not split into days or weeks) and one for the
    days at either end."""
    group, measures = list(group), list(measures)
    if month_model is not None and granularity in (None, "month"):
        months, edges = split_range(filters.date_from, filters.date_to)
    else:
        months, edges = None, [(filters.date_from, filters.date_to)]
    results: dict[tuple, dict] = {}
    if months:
        rows = month_model.objects.filter(day__gte=months[0], day__lt=months[1], **where)
        _accumulate(results, rows, group, measures, granularity)
    if edges:
        span = Q()
        for first, last in edges:
            span |= Q(day__gte=first, day__lte=last)
        _accumulate(results, day_model.objects.filter(span, **where), group, measures, granularity)
    return results


def _accumulate(results: dict, queryset, group: list[str], measures: list[str], granularity: str | None) -> None:
    keys = list(group)
    if granularity:
        queryset = queryset.annotate(period=_period_expression(granularity))
        keys = ["period", *keys]
    # Aliased: an annotation may not take the name of the column it sums.
    sums = {f"total_{m}": Sum(m) for m in measures}
    for row in queryset.values(*keys).annotate(**sums).order_by():
        key = tuple(row[k] for k in keys)
        if granularity and isinstance(key[0], datetime):
            key = (key[0].date(), *key[1:])
        target = results.setdefault(key, dict.fromkeys(measures, 0))
        for m in measures:
            target[m] += row[f"total_{m}"] or 0


LEAD_DIMENSIONS = {"source": "source", "campaign": "campaign_id", "stage": "stage_id", "owner": "owner_id"}


def _lead_where(filters: ReportFilters) -> dict:
    where = {}
    if filters.source:
        where["source"] = filters.source
    for name in ("campaign", "stage", "owner"):
        value = getattr(filters, name)
        if value is not None:
            where[LEAD_DIMENSIONS[name]] = value
    return where


def _lead_sums(filters: ReportFilters, *, group=(), measures=("leads",), granularity=None) -> dict[tuple, dict]:
    where = _lead_where(filters)
    grain = grain_for(LEAD_GRAINS, set(group) | set(where))
    return _sums(
        LeadDayRollup,
        LeadMonthRollup,
        filters,
        where={"grain": grain.bits, **where},
        group=group,
        measures=measures,
        granularity=granularity,
    )


def _sale_where(filters: ReportFilters) -> dict:
    where = {}
    for name in ("campaign", "buyer", "supplier"):
        value = getattr(filters, name)
        if value is not None:
            where[f"{name}_id"] = value
    return where


def _sale_sums(filters: ReportFilters, *, group=(), granularity=None) -> dict[tuple, dict]:
    where = _sale_where(filters)
    grain = grain_for(SALE_GRAINS, set(group) | set(where))
    return _sums(
        SaleDayRollup,
        SaleMonthRollup,
        filters,
        where={"grain": grain.bits, **where},
        group=group,
        measures=("sold", "revenue", "returned", "refunded"),
        granularity=granularity,
    )


def _total(sums: dict[tuple, dict], measure: str):
    return sum((row[measure] for row in sums.values()), 0)


# Labels ---------------------------------------------------------------------------------------------------------------


def _labels(dimension: str, ids: Iterable) -> dict:
    """Names for a dimension's values, in one query; rows of deleted campaigns or people keep their id."""
    from campaigns.models import Buyer, Campaign, Supplier

    ids = {i for i in ids if i not in (None, "", 0)}
    if dimension == "source":
        return {value: LeadSource(value).label if value in LeadSource.values else value for value in ids}
    if dimension == "channel":
        return {value: MessageChannel(value).label if value in MessageChannel.values else value for value in ids}
    names: dict = {}
    if ids:
        if dimension == "owner":
            names = {u.pk: u.display_name for u in User.objects.filter(pk__in=ids)}
        else:
            model = {"campaign": Campaign, "stage": PipelineStage, "buyer": Buyer, "supplier": Supplier}[dimension]
            names = dict(model.objects.filter(pk__in=ids).values_list("pk", "name"))
    empty = {"owner": "Unassigned", "campaign": "No campaign", "supplier": "No supplier"}.get(dimension, "—")
    return {0: empty, **{i: names.get(i, f"#{i} (deleted)") for i in ids}}


# Periods --------------------------------------------------------------------------------------------------------------


def periods(filters: ReportFilters, granularity: str) -> list[date]:
    """Every period's first day in the range (weeks start on Monday), so a quiet day still shows as a zero."""
    if granularity == "day":
        return [filters.date_from + timedelta(days=n) for n in range(filters.days)]
    if granularity == "week":
        first = filters.date_from - timedelta(days=filters.date_from.weekday())
        return [first + timedelta(weeks=n) for n in range((filters.date_to - first).days // 7 + 1)]
    months, current = [], filters.date_from.replace(day=1)
    while current <= filters.date_to:
        months.append(current)
        current = _next_month(current)
    return months


def period_label(start: date, granularity: str) -> str:
    if granularity == "month":
        return f"{start:%Y-%m}"
    if granularity == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.isoformat()


def _rate(part, whole) -> float | None:
    return round(100 * float(part) / float(whole), 1) if whole else None


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _series(labels: list[str], grouped: dict[str, list], *, kind: str = "line", stacked: bool = False) -> dict:
    """Chart series, the largest ``MAX_SERIES`` by total and the rest summed as "Other"."""
    ordered = sorted(grouped.items(), key=lambda item: (-sum(item[1]), item[0]))
    shown, rest = ordered[:MAX_SERIES], ordered[MAX_SERIES:]
    datasets = [{"label": label, "data": data} for label, data in shown]
    if rest:
        datasets.append({"label": "Other", "data": [sum(values) for values in zip(*(d for _, d in rest), strict=True)]})
    return {"type": kind, "labels": labels, "datasets": datasets, "stacked": stacked}


# The reports ----------------------------------------------------------------------------------------------------------


def leads_over_time(filters: ReportFilters) -> Report:
    granularity = filters.granularity
    dimension = filters.group_by if filters.group_by in LEAD_DIMENSIONS else ""
    group = (LEAD_DIMENSIONS[dimension],) if dimension else ()
    sums = _lead_sums(
        filters, group=group, measures=("leads", "duplicates", "contacted", "won"), granularity=granularity
    )
    names = _labels(dimension, (key[1] for key in sums)) if dimension else {}
    starts = periods(filters, granularity)
    labels = [period_label(start, granularity) for start in starts]
    rows = []
    for (start, *rest), values in sorted(sums.items(), key=lambda item: (item[0][0], str(item[0][1:]))):
        row = {"period": period_label(start, granularity)}
        if dimension:
            row[dimension] = names.get(rest[0], rest[0])
        rows.append(row | values)
    grouped: dict[str, list[int]] = defaultdict(lambda: [0] * len(starts))
    index = {start: n for n, start in enumerate(starts)}
    for (start, *rest), values in sums.items():
        series = names.get(rest[0], rest[0]) if dimension else "Leads"
        if start in index:
            grouped[series][index[start]] += values["leads"]
    columns = [("period", granularity.title())]
    if dimension:
        columns.append((dimension, dimension.title()))
    columns += [("leads", "Leads"), ("duplicates", "Duplicates"), ("contacted", "Contacted"), ("won", "Won")]
    totals = {m: _total(sums, m) for m in ("leads", "duplicates", "contacted", "won")}
    return Report(
        "leads",
        "Leads over time",
        columns,
        rows,
        totals,
        _series(labels, dict(grouped) or {"Leads": [0] * len(starts)}, stacked=bool(dimension)),
    )


def funnel(filters: ReportFilters) -> Report:
    """Leads by their current stage, and how many got at least that far: a lead in an open stage has passed the
    open stages before it, a won lead all of them; a lost lead is counted where it entered (the first stage)."""
    sums = _lead_sums(replace(filters, stage=None), group=("stage_id",), measures=("leads",))
    stages = list(PipelineStage.objects.order_by("position", "id"))
    at_stage = {key[0]: values["leads"] for key, values in sums.items()}
    if filters.stage is not None:
        stages = [s for s in stages if s.pk == filters.stage] or stages
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    won = sum(at_stage.get(s.pk, 0) for s in stages if s.kind == StageKind.WON)
    lost = sum(at_stage.get(s.pk, 0) for s in stages if s.kind == StageKind.LOST)
    total = sum(at_stage.values())
    rows, previous = [], None
    for n, stage in enumerate(open_stages):
        reached = sum(at_stage.get(s.pk, 0) for s in open_stages[n:]) + won + (lost if n == 0 else 0)
        rows.append(
            {
                "stage": stage.name,
                "kind": stage.get_kind_display(),
                "now": at_stage.get(stage.pk, 0),
                "reached": reached,
                "from_previous": _rate(reached, previous) if previous is not None else None,
                "from_first": _rate(reached, total),
            }
        )
        previous = reached
    for stage in stages:
        if stage.kind == StageKind.OPEN:
            continue
        count = at_stage.get(stage.pk, 0)
        rows.append(
            {
                "stage": stage.name,
                "kind": stage.get_kind_display(),
                "now": count,
                "reached": count,
                "from_previous": _rate(count, previous) if stage.kind == StageKind.WON and previous else None,
                "from_first": _rate(count, total),
            }
        )
    columns = [
        ("stage", "Stage"),
        ("kind", "Kind"),
        ("now", "Leads there now"),
        ("reached", "Reached"),
        ("from_previous", "% of previous"),
        ("from_first", "% of all"),
    ]
    chart = {
        "type": "bar",
        "labels": [row["stage"] for row in rows],
        "datasets": [{"label": "Reached", "data": [row["reached"] for row in rows]}],
        "horizontal": True,
    }
    notes = ["A lead counts as reaching every open stage up to its current one; lost leads count at the first."]
    return Report(
        "funnel", "Conversion funnel", columns, rows, {"leads": total, "won": won, "lost": lost}, chart, notes
    )


SPEED_MEASURES = ("leads", "contacted", "speed_seconds", *(column for column, _, _ in SPEED_BINS))


def _speed_row(values: dict) -> dict:
    contacted = values["contacted"]
    within_5m = values["speed_1m"] + values["speed_5m"]
    within_1h = within_5m + values["speed_15m"] + values["speed_1h"]
    return {
        "leads": values["leads"],
        "contacted": contacted,
        "not_contacted": values["leads"] - contacted,
        "within_5m": _rate(within_5m, values["leads"]),
        "within_1h": _rate(within_1h, values["leads"]),
        "mean_minutes": round(values["speed_seconds"] / contacted / 60, 1) if contacted else None,
        "median": _median_bin(values),
    }


def _median_bin(values: dict) -> str:
    """The bin holding the middle contacted lead (the rollup keeps bins, not every wait)."""
    contacted, running = values["contacted"], 0
    for column, _, label in SPEED_BINS:
        running += values[column]
        if contacted and running * 2 >= contacted:
            return label
    return "–"


def speed_to_lead(filters: ReportFilters) -> Report:
    dimension = filters.group_by if filters.group_by in LEAD_DIMENSIONS else ""
    sums = _lead_sums(filters, group=(LEAD_DIMENSIONS[dimension],) if dimension else (), measures=SPEED_MEASURES)
    totals_in = {m: _total(sums, m) for m in SPEED_MEASURES}
    totals = _speed_row(totals_in)
    bin_labels = [label for _, _, label in SPEED_BINS]
    if dimension:
        names = _labels(dimension, (key[0] for key in sums))
        rows = [
            {dimension: names.get(key[0], key[0])} | _speed_row(values)
            for key, values in sorted(sums.items(), key=lambda item: -item[1]["leads"])
        ]
        columns = [(dimension, dimension.title())]
        grouped = {names.get(key[0], key[0]): [values[c] for c, _, _ in SPEED_BINS] for key, values in sums.items()}
        ordered = sorted(grouped.items(), key=lambda item: -sum(item[1]))[:MAX_SERIES]
        chart = {
            "type": "bar",
            "labels": bin_labels,
            "datasets": [{"label": label, "data": data} for label, data in ordered],
            "stacked": True,
        }
        columns += [
            ("leads", "Leads"),
            ("contacted", "Contacted"),
            ("within_5m", "% within 5 min"),
            ("within_1h", "% within 1 h"),
            ("mean_minutes", "Mean minutes"),
            ("median", "Median"),
        ]
    else:
        rows, running = [], 0
        for column, _, label in SPEED_BINS:
            running += totals_in[column]
            rows.append(
                {
                    "wait": label,
                    "leads": totals_in[column],
                    "share": _rate(totals_in[column], totals_in["contacted"]),
                    "cumulative": _rate(running, totals_in["leads"]),
                }
            )
        rows.append({"wait": "not contacted", "leads": totals["not_contacted"], "share": None, "cumulative": None})
        columns = [
            ("wait", "First contact after"),
            ("leads", "Leads"),
            ("share", "% of contacted"),
            ("cumulative", "% of all leads, cumulative"),
        ]
        chart = {
            "type": "bar",
            "labels": bin_labels,
            "datasets": [{"label": "Leads", "data": [totals_in[c] for c, _, _ in SPEED_BINS]}],
        }
    return Report("speed", "Speed to lead", columns, rows, totals, chart)


def _spend_by_campaign(filters: ReportFilters) -> dict[int, Decimal]:
    queryset = CampaignSpendDay.objects.filter(day__gte=filters.date_from, day__lte=filters.date_to)
    if filters.campaign is not None:
        queryset = queryset.filter(campaign_id=filters.campaign)
    return dict(queryset.values("campaign_id").annotate(total=Sum("amount")).values_list("campaign_id", "total"))


UNATTRIBUTED = "unattributed"


def cost_per_lead(filters: ReportFilters) -> Report:
    """Ad spend booked in the range over the leads received in it, by campaign, or by source (each campaign's
    spend shared among the sources of its leads, in proportion)."""
    dimension = "source" if filters.group_by == "source" else "campaign"
    spend = _spend_by_campaign(filters)
    sums = _lead_sums(filters, group=("campaign_id", "source"), measures=("leads",))
    leads_by: dict = defaultdict(int)
    spend_by: dict = defaultdict(lambda: ZERO)
    campaign_leads: dict[int, int] = defaultdict(int)
    for (campaign_id, _source), values in sums.items():
        campaign_leads[campaign_id] += values["leads"]
    for (campaign_id, source), values in sums.items():
        key = campaign_id if dimension == "campaign" else source
        leads_by[key] += values["leads"]
        if dimension == "source" and campaign_leads[campaign_id]:
            spend_by[key] += spend.get(campaign_id, ZERO) * values["leads"] / campaign_leads[campaign_id]
    for campaign_id, amount in spend.items():
        if filters.source and not campaign_leads.get(campaign_id):
            continue  # a campaign with none of this source's leads
        if dimension == "campaign":
            spend_by[campaign_id] += amount
        elif not campaign_leads.get(campaign_id):
            spend_by[UNATTRIBUTED] += amount  # no leads in the range to share it among
    names = _labels(dimension, (set(leads_by) | set(spend_by)) - {UNATTRIBUTED})
    names[UNATTRIBUTED] = "Campaigns with no leads in the range"
    rows = []
    for key in set(leads_by) | set(spend_by):
        amount = _money(spend_by.get(key, ZERO))
        leads = leads_by.get(key, 0)
        rows.append(
            {
                dimension: names.get(key, key),
                "spend": amount,
                "leads": leads,
                "cost_per_lead": _money(amount / leads) if leads else None,
            }
        )
    rows.sort(key=lambda row: (-row["spend"], -row["leads"], str(row[dimension])))
    total_spend = _money(sum((row["spend"] for row in rows), ZERO))
    total_leads = sum(row["leads"] for row in rows)
    totals = {
        "spend": total_spend,
        "leads": total_leads,
        "cost_per_lead": _money(total_spend / total_leads) if total_leads else None,
    }
    priced = [row for row in rows if row["cost_per_lead"] is not None and row["spend"]]
    chart = {
        "type": "bar",
        "labels": [str(row[dimension]) for row in priced],
        "datasets": [{"label": "Cost per lead", "data": [float(row["cost_per_lead"]) for row in priced]}],
    }
    columns = [(dimension, dimension.title()), ("spend", "Ad spend"), ("leads", "Leads"), ("cost_per_lead", "CPL")]
    return Report("cost", "Cost per lead", columns, rows, totals, chart)


def _submission_sums(filters: ReportFilters, *, group=(), granularity=None) -> dict[tuple, dict]:
    where = {f"{name}_id": getattr(filters, name) for name in ("campaign", "supplier") if getattr(filters, name)}
    return _sums(
        SubmissionDayRollup,
        None,
        filters,
        where=where,
        group=group,
        measures=("submitted", "accepted", "duplicates", "rejected", "payout"),
        granularity=granularity,
    )


def revenue(filters: ReportFilters) -> Report:
    """Per period: won deals (of the leads received in it), lead sales net of refunds, ad spend and supplier
    payouts; ROI is (revenue - cost) / cost."""
    granularity = filters.granularity
    won = _lead_sums(filters, measures=("won", "won_revenue"), granularity=granularity)
    sales = _sale_sums(filters, granularity=granularity)
    payouts = _submission_sums(filters, granularity=granularity)
    spend_rows = CampaignSpendDay.objects.filter(day__gte=filters.date_from, day__lte=filters.date_to)
    if filters.campaign is not None:
        spend_rows = spend_rows.filter(campaign_id=filters.campaign)
    spend = {
        row["period"].date() if isinstance(row["period"], datetime) else row["period"]: row["total"]
        for row in spend_rows.annotate(period=_period_expression(granularity))
        .values("period")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    rows = []
    for start in periods(filters, granularity):
        w, s, p = won.get((start,), {}), sales.get((start,), {}), payouts.get((start,), {})
        row = {
            "period": period_label(start, granularity),
            "won": w.get("won", 0),
            "won_revenue": _money(w.get("won_revenue")),
            "sold": s.get("sold", 0),
            "sales_revenue": _money(s.get("revenue")),
            "refunded": _money(s.get("refunded")),
            "ad_spend": _money(spend.get(start)),
            "payouts": _money(p.get("payout")),
        }
        rows.append(_with_profit(row))
    money_keys = ("won_revenue", "sales_revenue", "refunded", "ad_spend", "payouts")
    totals = {"won": sum(r["won"] for r in rows), "sold": sum(r["sold"] for r in rows)}
    totals |= {key: _money(sum((r[key] for r in rows), ZERO)) for key in money_keys}
    totals = _with_profit(totals)
    columns = [
        ("period", granularity.title()),
        ("won", "Won deals"),
        ("won_revenue", "Won revenue"),
        ("sold", "Leads sold"),
        ("sales_revenue", "Sales revenue"),
        ("refunded", "Refunded"),
        ("revenue", "Revenue"),
        ("ad_spend", "Ad spend"),
        ("payouts", "Supplier payouts"),
        ("profit", "Profit"),
        ("roi", "ROI %"),
    ]
    chart = {
        "type": "bar",
        "labels": [row["period"] for row in rows],
        "datasets": [
            {"label": "Won revenue", "data": [float(row["won_revenue"]) for row in rows]},
            {"label": "Sales revenue (net)", "data": [float(row["sales_revenue"] - row["refunded"]) for row in rows]},
            {"label": "Cost", "data": [float(row["ad_spend"] + row["payouts"]) for row in rows]},
        ],
    }
    notes = ["Won revenue is that of the leads received in each period; sales count on the day they were made."]
    return Report("revenue", "Revenue and ROI", columns, rows, totals, chart, notes)


def _with_profit(row: dict) -> dict:
    income = row["won_revenue"] + row["sales_revenue"] - row["refunded"]
    cost = row["ad_spend"] + row["payouts"]
    return row | {"revenue": income, "profit": income - cost, "roi": _rate(income - cost, cost)}


def buyers(filters: ReportFilters) -> Report:
    sums = _sale_sums(filters, group=("buyer_id",))
    names = _labels("buyer", (key[0] for key in sums))
    rows = []
    for (buyer_id,), values in sums.items():
        rows.append(
            {
                "buyer": names.get(buyer_id, buyer_id),
                "sold": values["sold"],
                "returned": values["returned"],
                "return_rate": _rate(values["returned"], values["sold"]),
                "revenue": _money(values["revenue"]),
                "refunded": _money(values["refunded"]),
                "net_revenue": _money(values["revenue"] - values["refunded"]),
            }
        )
    rows.sort(key=lambda row: (-row["net_revenue"], str(row["buyer"])))
    totals = {
        "sold": sum(r["sold"] for r in rows),
        "returned": sum(r["returned"] for r in rows),
        "revenue": _money(sum((r["revenue"] for r in rows), ZERO)),
        "refunded": _money(sum((r["refunded"] for r in rows), ZERO)),
    }
    totals["net_revenue"] = totals["revenue"] - totals["refunded"]
    totals["return_rate"] = _rate(totals["returned"], totals["sold"])
    columns = [
        ("buyer", "Buyer"),
        ("sold", "Sold"),
        ("returned", "Returned"),
        ("return_rate", "Return %"),
        ("revenue", "Revenue"),
        ("refunded", "Refunded"),
        ("net_revenue", "Net revenue"),
    ]
    top = rows[: MAX_SERIES * 2]
    chart = {
        "type": "bar",
        "labels": [str(row["buyer"]) for row in top],
        "datasets": [
            {"label": "Sold", "data": [row["sold"] for row in top]},
            {"label": "Returned", "data": [row["returned"] for row in top]},
        ],
    }
    return Report("buyers", "Buyer performance", columns, rows, totals, chart)


def suppliers(filters: ReportFilters) -> Report:
    """What each supplier posted and earned, what its leads sold for, and the profit: sales net of refunds minus
    the payout."""
    posted = _submission_sums(filters, group=("supplier_id",))
    sold = _sale_sums(filters, group=("supplier_id",))
    ids = {key[0] for key in posted} | {key[0] for key in sold if key[0]}
    names = _labels("supplier", ids)
    rows = []
    for supplier_id in ids:
        p = posted.get((supplier_id,), {})
        s = sold.get((supplier_id,), {})
        net = _money(s.get("revenue", 0)) - _money(s.get("refunded", 0))
        payout = _money(p.get("payout", 0))
        rows.append(
            {
                "supplier": names.get(supplier_id, supplier_id),
                "submitted": p.get("submitted", 0),
                "accepted": p.get("accepted", 0),
                "acceptance_rate": _rate(p.get("accepted", 0), p.get("submitted", 0)),
                "payout": payout,
                "sold": s.get("sold", 0),
                "net_revenue": net,
                "profit": net - payout,
            }
        )
    rows.sort(key=lambda row: (-row["profit"], str(row["supplier"])))
    totals = {
        key: sum((row[key] for row in rows), ZERO if key in ("payout", "net_revenue", "profit") else 0)
        for key in ("submitted", "accepted", "payout", "sold", "net_revenue", "profit")
    }
    totals["acceptance_rate"] = _rate(totals["accepted"], totals["submitted"])
    columns = [
        ("supplier", "Supplier"),
        ("submitted", "Submitted"),
        ("accepted", "Accepted"),
        ("acceptance_rate", "Accepted %"),
        ("payout", "Payout"),
        ("sold", "Sold"),
        ("net_revenue", "Sales, net of refunds"),
        ("profit", "Profit"),
    ]
    chart = {
        "type": "bar",
        "labels": [str(row["supplier"]) for row in rows[: MAX_SERIES * 2]],
        "datasets": [{"label": "Profit", "data": [float(row["profit"]) for row in rows[: MAX_SERIES * 2]]}],
    }
    notes = ["Payouts count on the day the lead was posted, sales on the day they were made."]
    return Report("suppliers", "Supplier profit", columns, rows, totals, chart, notes)


def messages(filters: ReportFilters) -> Report:
    where = {"channel": filters.channel} if filters.channel else {}
    sums = _sums(
        MessageDayRollup,
        None,
        filters,
        where=where,
        group=("channel", "direction"),
        measures=("messages", "sent", "delivered", "read", "failed", "replied"),
    )
    by_channel: dict[str, dict] = {}
    for (channel, direction), values in sums.items():
        row = by_channel.setdefault(
            channel, {"outbound": 0, "sent": 0, "delivered": 0, "read": 0, "failed": 0, "replied": 0, "inbound": 0}
        )
        if direction == Direction.OUTBOUND:
            row["outbound"] += values["messages"]
            for m in ("sent", "delivered", "read", "failed", "replied"):
                row[m] += values[m]
        else:
            row["inbound"] += values["messages"]
    names = _labels("channel", by_channel)

    def rates(row: dict) -> dict:
        return row | {
            "delivery_rate": _rate(row["delivered"], row["outbound"]),
            "read_rate": _rate(row["read"], row["outbound"]),
            "reply_rate": _rate(row["replied"], row["outbound"]),
        }

    rows = [{"channel": names.get(c, c)} | rates(v) for c, v in sorted(by_channel.items())]
    totals = rates(
        {
            key: sum(row[key] for row in rows)
            for key in ("outbound", "sent", "delivered", "read", "failed", "replied", "inbound")
        }
    )
    columns = [
        ("channel", "Channel"),
        ("outbound", "Sent by us"),
        ("delivered", "Delivered"),
        ("read", "Read"),
        ("failed", "Failed"),
        ("replied", "Replied"),
        ("delivery_rate", "Delivery %"),
        ("read_rate", "Read %"),
        ("reply_rate", "Reply %"),
        ("inbound", "Received"),
    ]
    chart = {
        "type": "bar",
        "labels": [row["channel"] for row in rows],
        "datasets": [
            {"label": "Delivery %", "data": [row["delivery_rate"] or 0 for row in rows]},
            {"label": "Reply %", "data": [row["reply_rate"] or 0 for row in rows]},
        ],
    }
    return Report("messages", "Message delivery and replies", columns, rows, totals, chart)


def rollups_as_of():
    """When the organization's rollups were last refreshed (``None``: never)."""
    return RollupState.objects.aggregate(at=Max("refreshed_at"))["at"]
