"""What each rollup sums, as the SQL that computes a cube's day rows from the source tables.

A cube's rows for an organization and a span of its days are ``select_sql`` with the span's bounds (UTC instants
of the organization's local midnights); the local day of a row is ``(timestamp AT TIME ZONE tz)::date``, the
same rule the reports use to turn a date range into instants. Every statement starts from an index whose leading
columns are (organization, time): ``leads_newest_idx``, ``campaigns_sale_org_created_idx``,
``campaigns_csub_org_created_idx``, ``messaging_msg_org_created_idx``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from .models import (
    LeadDayRollup,
    LeadMonthRollup,
    MessageDayRollup,
    SaleDayRollup,
    SaleMonthRollup,
    SubmissionDayRollup,
)

# Speed-to-lead bins: (column, upper bound in seconds, label); the last has no bound.
SPEED_BINS = [
    ("speed_1m", 60, "≤ 1 min"),
    ("speed_5m", 300, "1–5 min"),
    ("speed_15m", 900, "5–15 min"),
    ("speed_1h", 3600, "15–60 min"),
    ("speed_4h", 4 * 3600, "1–4 h"),
    ("speed_24h", 24 * 3600, "4–24 h"),
    ("speed_later", None, "over 24 h"),
]


def _speed_bins_sql() -> str:
    parts, lower = [], None
    for column, upper, _label in SPEED_BINS:
        conditions = ["original", "wait IS NOT NULL"]
        if lower is not None:
            conditions.append(f"wait > {lower}")
        if upper is not None:
            conditions.append(f"wait <= {upper}")
        parts.append(f"COUNT(*) FILTER (WHERE {' AND '.join(conditions)}) AS {column}")
        lower = upper
    return ",\n  ".join(parts)


# Grains: each cube is stored at several levels of detail at once (PostgreSQL GROUPING SETS), and a report reads the
# smallest that has every dimension it groups or filters by. A day of a million-lead workspace holds about a
# thousand combinations of source, campaign, stage and owner, but only ~60 of source and campaign and one total:
# a year's weekly series then reads a few hundred rows instead of hundreds of thousands. ``grain`` is PostgreSQL's
# GROUPING() bitmask over the cube's dimensions (a set bit: summed over); a summed-over dimension holds ``ALL``.
ALL_SOURCES = "*"
ALL_IDS = -1


@dataclass(frozen=True)
class Grain:
    bits: int
    dimensions: frozenset[str]


def _grains(order: tuple[str, ...], kept: list[tuple[str, ...]]) -> tuple[Grain, ...]:
    """Grains from the dimensions each keeps, smallest first (the order they are tried in)."""
    grains = []
    for dimensions in kept:
        bits = sum(1 << (len(order) - 1 - n) for n, name in enumerate(order) if name not in dimensions)
        grains.append(Grain(bits, frozenset(dimensions)))
    return tuple(grains)


def grain_for(grains: tuple[Grain, ...], needed: set[str]) -> Grain:
    return next(grain for grain in grains if needed <= grain.dimensions)


def _grouping_sets(order: tuple[str, ...], grains: tuple[Grain, ...]) -> str:
    return ", ".join("(" + ", ".join(d for d in order if d in grain.dimensions) + ")" for grain in grains)


@dataclass(frozen=True)
class Cube:
    name: str
    day_model: type[models.Model]
    month_model: type[models.Model] | None
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    # SELECT organization_id, day, <dimensions>, <measures> … WHERE … {span} GROUP BY …, with %(organization)s,
    # %(tz)s and, inside {span}, %(start)s and %(end)s.
    select_sql: str
    span_sql: str
    # Days back from today (the organization's) that every refresh recomputes.
    live_days: int
    grains: tuple[Grain, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return ("organization_id", "day", *self.dimensions, *self.measures)

    def source_sql(self, *, bounded: bool) -> str:
        # In (grain and) day order: a range of days of a grain is then a run of neighbouring heap pages, not rows
        # scattered in the aggregate's order.
        return self.select_sql.format(span=self.span_sql if bounded else "") + self.order_sql

    @property
    def order_sql(self) -> str:
        return "ORDER BY 3, 2\n" if self.dimensions[0] == "grain" else "ORDER BY 2\n"


LEAD_DIMENSION_ORDER = ("source", "campaign_id", "stage_id", "owner_id")
LEAD_GRAINS = _grains(
    LEAD_DIMENSION_ORDER,
    [
        (),
        ("source", "campaign_id"),
        ("stage_id", "owner_id"),
        ("source", "campaign_id", "stage_id"),
        LEAD_DIMENSION_ORDER,
    ],
)

LEADS = Cube(
    name="leads",
    day_model=LeadDayRollup,
    month_model=LeadMonthRollup,
    dimensions=("grain", *LEAD_DIMENSION_ORDER),
    measures=(
        "leads",
        "duplicates",
        "won",
        "won_revenue",
        "lost",
        "contacted",
        "speed_seconds",
        *(column for column, _, _ in SPEED_BINS),
    ),
    select_sql="""
SELECT organization_id, day, GROUPING(source, campaign_id, stage_id, owner_id) AS grain,
  COALESCE(source, '*'), COALESCE(campaign_id, -1), COALESCE(stage_id, -1), COALESCE(owner_id, -1),
  COUNT(*) FILTER (WHERE original) AS leads,
  COUNT(*) FILTER (WHERE NOT original) AS duplicates,
  COUNT(*) FILTER (WHERE original AND kind = 'won') AS won,
  COALESCE(SUM(won_amount) FILTER (WHERE original AND kind = 'won'), 0) AS won_revenue,
  COUNT(*) FILTER (WHERE original AND kind = 'lost') AS lost,
  COUNT(*) FILTER (WHERE original AND wait IS NOT NULL) AS contacted,
  COALESCE(SUM(GREATEST(0, wait)) FILTER (WHERE original), 0)::bigint AS speed_seconds,
  {speed_bins}
FROM (
  SELECT l.organization_id, (l.received_at AT TIME ZONE %(tz)s)::date AS day, l.source,
    COALESCE(routed.campaign_id, 0) AS campaign_id, l.stage_id, COALESCE(l.owner_id, 0) AS owner_id,
    l.duplicate_of_id IS NULL AS original, s.kind, l.won_amount,
    EXTRACT(EPOCH FROM (l.first_contacted_at - l.received_at)) AS wait
  FROM leads_lead l
  JOIN leads_pipelinestage s ON s.id = l.stage_id
  LEFT JOIN LATERAL (
    SELECT d.campaign_id FROM campaigns_leaddistribution d WHERE d.lead_id = l.id ORDER BY d.round, d.id LIMIT 1
  ) routed ON TRUE
  WHERE l.organization_id = %(organization)s {span}
) lead
GROUP BY organization_id, day, GROUPING SETS ({grouping_sets})
""".replace("{speed_bins}", _speed_bins_sql()).replace(
        "{grouping_sets}", _grouping_sets(LEAD_DIMENSION_ORDER, LEAD_GRAINS)
    ),
    span_sql="AND l.received_at >= %(start)s AND l.received_at < %(end)s",
    live_days=2,
    grains=LEAD_GRAINS,
)

SALE_DIMENSION_ORDER = ("campaign_id", "buyer_id", "supplier_id")
SALE_GRAINS = _grains(SALE_DIMENSION_ORDER, [(), ("campaign_id",), SALE_DIMENSION_ORDER])

SALES = Cube(
    name="sales",
    day_model=SaleDayRollup,
    month_model=SaleMonthRollup,
    dimensions=("grain", *SALE_DIMENSION_ORDER),
    measures=("sold", "revenue", "returned", "refunded"),
    select_sql="""
SELECT organization_id, day, GROUPING(campaign_id, buyer_id, supplier_id) AS grain,
  COALESCE(campaign_id, -1), COALESCE(buyer_id, -1), COALESCE(supplier_id, -1),
  COUNT(*) AS sold,
  COALESCE(SUM(price), 0) AS revenue,
  COUNT(*) FILTER (WHERE returned) AS returned,
  COALESCE(SUM(price) FILTER (WHERE returned AND refunded), 0) AS refunded
FROM (
  SELECT s.organization_id, (s.created_at AT TIME ZONE %(tz)s)::date AS day, s.campaign_id, s.buyer_id,
    COALESCE(posted.supplier_id, 0) AS supplier_id, s.price,
    COALESCE(r.status = 'approved', FALSE) AS returned, r.refund_entry_id IS NOT NULL AS refunded
  FROM campaigns_leadsale s
  LEFT JOIN campaigns_leadreturn r ON r.sale_id = s.id
  LEFT JOIN LATERAL (
    SELECT cs.supplier_id FROM leads_inboundsubmission i
    JOIN campaigns_campaignsubmission cs ON cs.submission_id = i.id
    WHERE i.lead_id = s.lead_id AND cs.supplier_id IS NOT NULL ORDER BY cs.id LIMIT 1
  ) posted ON TRUE
  WHERE s.organization_id = %(organization)s {span}
) sale
GROUP BY organization_id, day, GROUPING SETS ({grouping_sets})
""".replace("{grouping_sets}", _grouping_sets(SALE_DIMENSION_ORDER, SALE_GRAINS)),
    span_sql="AND s.created_at >= %(start)s AND s.created_at < %(end)s",
    # Returns are asked for within the campaign's window (72 h by default) and decided soon after; a return decided
    # later marks its sale's day stale (analytics.signals).
    live_days=4,
    grains=SALE_GRAINS,
)

SUBMISSIONS = Cube(
    name="submissions",
    day_model=SubmissionDayRollup,
    month_model=None,
    dimensions=("supplier_id", "campaign_id"),
    measures=("submitted", "accepted", "duplicates", "rejected", "payout"),
    select_sql="""
SELECT cs.organization_id, (cs.created_at AT TIME ZONE %(tz)s)::date AS day,
  COALESCE(cs.supplier_id, 0), cs.campaign_id,
  COUNT(*) AS submitted,
  COUNT(*) FILTER (WHERE cs.outcome = 'accepted') AS accepted,
  COUNT(*) FILTER (WHERE cs.outcome = 'duplicate') AS duplicates,
  COUNT(*) FILTER (WHERE cs.outcome = 'rejected') AS rejected,
  COALESCE(SUM(cs.payout), 0) AS payout
FROM campaigns_campaignsubmission cs
WHERE cs.organization_id = %(organization)s {span}
GROUP BY 1, 2, 3, 4
""",
    span_sql="AND cs.created_at >= %(start)s AND cs.created_at < %(end)s",
    # A failed submission is processed again by the intake's retries (minutes to hours later).
    live_days=2,
)

MESSAGES = Cube(
    name="messages",
    day_model=MessageDayRollup,
    month_model=None,
    dimensions=("channel", "direction"),
    measures=("messages", "sent", "delivered", "read", "failed", "replied"),
    select_sql="""
SELECT m.organization_id, (m.created_at AT TIME ZONE %(tz)s)::date AS day,
  m.channel, m.direction,
  COUNT(*) AS messages,
  COUNT(*) FILTER (WHERE m.status IN ('sent', 'delivered', 'read')) AS sent,
  COUNT(*) FILTER (WHERE m.status IN ('delivered', 'read')) AS delivered,
  COUNT(*) FILTER (WHERE m.status = 'read') AS read,
  COUNT(*) FILTER (WHERE m.status = 'failed') AS failed,
  COUNT(*) FILTER (WHERE m.replied_at IS NOT NULL) AS replied
FROM messaging_message m
WHERE m.organization_id = %(organization)s {span}
GROUP BY 1, 2, 3, 4
""",
    span_sql="AND m.created_at >= %(start)s AND m.created_at < %(end)s",
    # Delivery and read receipts arrive within minutes to days, and a reply marks every message of ours since the
    # lead's last one: a fortnight is recomputed every time (replies to older messages are not counted).
    live_days=14,
)

CUBES: dict[str, Cube] = {cube.name: cube for cube in (LEADS, SALES, SUBMISSIONS, MESSAGES)}
