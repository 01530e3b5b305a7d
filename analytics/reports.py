"""The reports the pages and the API serve: each one's selector, the filters it takes, and its CSV.

Adding a report is one ``ReportSpec`` here and one selector; the page tab, the API endpoint
(``/api/v1/analytics/<name>/``), the CSV download and the tests' tenancy walk pick it up from ``REPORTS``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from leads.exports import csv_cell

from . import selectors
from .selectors import Report, ReportFilters

LEAD_FILTERS = ("source", "campaign", "stage", "owner")
LEAD_GROUPS = [("", "Nothing"), ("source", "Source"), ("campaign", "Campaign"), ("stage", "Stage"), ("owner", "Owner")]


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    description: str
    selector: Callable[[ReportFilters], Report]
    filters: tuple[str, ...]
    group_by_choices: tuple[tuple[str, str], ...] = ()
    # Reports of leads can show the leads of no campaign ("campaign=0"); sales always have one.
    leads_without_campaign: bool = False


REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec(
            "leads",
            "Leads",
            "Leads received per day, week or month, by source, campaign, stage or owner.",
            selectors.leads_over_time,
            ("granularity", "group_by", *LEAD_FILTERS),
            tuple(LEAD_GROUPS),
            leads_without_campaign=True,
        ),
        ReportSpec(
            "funnel",
            "Funnel",
            "How far the leads received in the range got through the pipeline.",
            selectors.funnel,
            ("source", "campaign", "owner"),
            leads_without_campaign=True,
        ),
        ReportSpec(
            "speed",
            "Speed to lead",
            "Time from a lead's arrival to its first contact.",
            selectors.speed_to_lead,
            ("group_by", *LEAD_FILTERS),
            (("", "Nothing"), ("owner", "Owner"), ("source", "Source"), ("campaign", "Campaign")),
            leads_without_campaign=True,
        ),
        ReportSpec(
            "cost",
            "Cost per lead",
            "Ad spend booked in the range over the leads received in it.",
            selectors.cost_per_lead,
            ("group_by", "source", "campaign"),
            (("campaign", "Campaign"), ("source", "Source")),
            leads_without_campaign=True,
        ),
        ReportSpec(
            "revenue",
            "Revenue & ROI",
            "Won deals and lead sales against ad spend and supplier payouts.",
            selectors.revenue,
            ("granularity", "campaign"),
        ),
        ReportSpec(
            "buyers",
            "Buyers",
            "Leads each buyer bought and returned, and what they paid.",
            selectors.buyers,
            ("campaign", "buyer"),
        ),
        ReportSpec(
            "suppliers",
            "Suppliers",
            "Leads each supplier posted, what they earned, and the profit on them.",
            selectors.suppliers,
            ("campaign", "supplier"),
        ),
        ReportSpec(
            "messages",
            "Messages",
            "Delivery, read and reply rates of the messages sent, by channel.",
            selectors.messages,
            ("channel",),
        ),
    )
}


def _plain(value):
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def report_csv(report: Report) -> Iterator[str]:
    """The report's table as CSV lines (a header, the rows, then a totals line when the report has totals)."""

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())
    keys = [key for key, _ in report.columns]
    yield "\ufeff" + writer.writerow([label for _, label in report.columns])
    for row in report.rows:
        yield writer.writerow([csv_cell(_plain(row.get(key))) for key in keys])
    if report.totals:
        first = keys[0]
        yield writer.writerow([csv_cell(_plain(report.totals.get(key))) if key != first else "Total" for key in keys])


def csv_filename(report: Report, filters: ReportFilters, organization) -> str:
    return f"{report.name}-{organization.slug}-{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}.csv"


def _shown(value) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_cells(report: Report, row: dict, *, first: str | None = None) -> list[str]:
    """A row (or the totals, labelled ``first``) as the page's table shows it."""
    keys = [key for key, _ in report.columns]
    return [first if first is not None and n == 0 else _shown(row.get(key)) for n, key in enumerate(keys)]
