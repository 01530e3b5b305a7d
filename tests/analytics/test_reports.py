"""Every report's figures on small factory data, worked out by hand (the organization is on Asia/Kolkata, UTC+5:30,
so 18:29 UTC is still the same local day and 18:30 UTC the next one)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics import selectors
from analytics.models import CampaignSpendDay
from analytics.selectors import split_range
from analytics.services import spend_book
from tests.factories import (
    BuyerFactory,
    CampaignFactory,
    CampaignSubmissionFactory,
    ConversationFactory,
    InboundSubmissionFactory,
    LeadDistributionFactory,
    LeadReturnFactory,
    LeadSaleFactory,
    MessageFactory,
    SupplierFactory,
    WalletEntryFactory,
)

from .conftest import at, by, d

pytestmark = pytest.mark.django_db


# Leads over time --------------------------------------------------------------------------------------------------------


def test_leads_count_on_the_organization_local_day(make_lead, report):
    make_lead("2026-10-10 18:29")  # 23:59 on the 10th in Kolkata
    make_lead("2026-10-10 18:30")  # 00:00 on the 11th
    original = make_lead("2026-10-11 05:00", source="facebook")
    make_lead("2026-10-11 06:00", source="facebook", duplicate_of=original)
    make_lead("2026-10-09 18:31")  # the 9th in UTC, the 10th in Kolkata

    result = report(selectors.leads_over_time, "2026-10-10", "2026-10-11", granularity="day")
    rows = by(result.rows, "period")
    assert rows["2026-10-10"]["leads"] == 2
    assert rows["2026-10-11"]["leads"] == 2 and rows["2026-10-11"]["duplicates"] == 1
    assert result.totals == {"leads": 4, "duplicates": 1, "contacted": 0, "won": 0}
    assert result.chart["labels"] == ["2026-10-10", "2026-10-11"]
    assert result.chart["datasets"] == [{"label": "Leads", "data": [2, 2]}]

    only_the_11th = report(selectors.leads_over_time, "2026-10-11", "2026-10-11", rebuild=False)
    assert only_the_11th.totals["leads"] == 2


def test_leads_broken_down_and_filtered(make_lead, report, people, stages):
    asha, bilal = people
    campaign = CampaignFactory(organization=stages["New"].organization, name="Solar Pune")
    for _ in range(3):
        lead = make_lead("2026-10-12 08:00", source="facebook", owner=asha)
        LeadDistributionFactory(organization=lead.organization, lead=lead, campaign=campaign)
    make_lead("2026-10-12 09:00", source="google_ads", owner=bilal, stage="Qualified")
    make_lead("2026-10-13 09:00", source="google_ads")

    by_source = report(selectors.leads_over_time, "2026-10-12", "2026-10-13", group_by="source")
    counts = {(row["period"], row["source"]): row["leads"] for row in by_source.rows}
    assert counts == {
        ("2026-10-12", "Facebook Lead Ads"): 3,
        ("2026-10-12", "Google Ads"): 1,
        ("2026-10-13", "Google Ads"): 1,
    }
    assert {d["label"]: d["data"] for d in by_source.chart["datasets"]} == {
        "Facebook Lead Ads": [3, 0],
        "Google Ads": [1, 1],
    }

    def total(**filters):
        return report(selectors.leads_over_time, "2026-10-12", "2026-10-13", rebuild=False, **filters).totals["leads"]

    assert total(source="google_ads") == 2
    assert total(owner=0) == 1  # unassigned
    assert total(owner=asha.pk) == 3
    assert total(campaign=campaign.pk) == 3
    assert total(campaign=0) == 2  # no campaign
    assert total(stage=stages["Qualified"].pk) == 1
    assert total(source="facebook", owner=bilal.pk) == 0

    by_owner = report(selectors.leads_over_time, "2026-10-12", "2026-10-13", rebuild=False, group_by="owner")
    assert {row["owner"] for row in by_owner.rows} == {"Asha Rao", "Bilal Khan", "Unassigned"}
    by_campaign = report(selectors.leads_over_time, "2026-10-12", "2026-10-12", rebuild=False, group_by="campaign")
    assert by(by_campaign.rows, "campaign")["Solar Pune"]["leads"] == 3
    assert by(by_campaign.rows, "campaign")["No campaign"]["leads"] == 1


def test_weeks_start_on_monday_and_months_read_month_rows(make_lead, report):
    make_lead("2026-10-11 18:29")  # Sunday the 11th in Kolkata: ISO week 41
    make_lead("2026-10-11 18:30")  # Monday the 12th: week 42
    make_lead("2026-09-30 12:00")
    make_lead("2026-10-01 12:00")
    make_lead("2026-10-31 18:29")  # still October in Kolkata
    make_lead("2026-10-31 18:30")  # November the 1st
    make_lead("2026-11-02 12:00")

    weeks = report(selectors.leads_over_time, "2026-10-05", "2026-10-18", granularity="week")
    assert {row["period"]: row["leads"] for row in weeks.rows} == {"2026-W41": 1, "2026-W42": 1}
    assert weeks.chart["labels"] == ["2026-W41", "2026-W42"]

    months = report(selectors.leads_over_time, "2026-09-30", "2026-11-02", rebuild=False, granularity="month")
    assert {row["period"]: row["leads"] for row in months.rows} == {"2026-09": 1, "2026-10": 4, "2026-11": 2}
    # The same range read day by day gives the same total (October from its month row, the ends from day rows).
    days = report(selectors.leads_over_time, "2026-09-30", "2026-11-02", rebuild=False, granularity="day")
    assert days.totals["leads"] == months.totals["leads"] == 7


def test_split_range():
    assert split_range(d("2026-10-05"), d("2026-10-20")) == (None, [(d("2026-10-05"), d("2026-10-20"))])
    assert split_range(d("2026-10-01"), d("2026-10-31")) == ((d("2026-10-01"), d("2026-11-01")), [])
    assert split_range(d("2026-09-30"), d("2026-12-02")) == (
        (d("2026-10-01"), d("2026-12-01")),
        [(d("2026-09-30"), d("2026-09-30")), (d("2026-12-01"), d("2026-12-02"))],
    )


# Funnel and speed to lead -----------------------------------------------------------------------------------------------


def test_funnel_through_the_stages(make_lead, report):
    for stage, count in {"New": 3, "Contacted": 2, "Qualified": 1, "Proposal": 1, "Won": 2, "Lost": 1}.items():
        for _ in range(count):
            make_lead("2026-10-12 08:00", stage=stage)
    make_lead("2026-10-20 08:00", stage="Won")  # outside the range

    result = report(selectors.funnel, "2026-10-01", "2026-10-15")
    rows = by(result.rows, "stage")
    assert [row["stage"] for row in result.rows] == ["New", "Contacted", "Qualified", "Proposal", "Won", "Lost"]
    assert {name: rows[name]["reached"] for name in rows} == {
        "New": 10,
        "Contacted": 6,
        "Qualified": 4,
        "Proposal": 3,
        "Won": 2,
        "Lost": 1,
    }
    assert rows["Contacted"]["from_previous"] == 60.0
    assert rows["Qualified"]["from_previous"] == 66.7
    assert rows["Won"]["from_previous"] == 66.7 and rows["Won"]["from_first"] == 20.0
    assert result.totals == {"leads": 10, "won": 2, "lost": 1}


def test_speed_to_lead_distribution(make_lead, report, people):
    asha, _ = people
    for seconds in (30, 200, 200, 2000, 90_000):
        make_lead("2026-10-12 08:00", contacted_after_s=seconds, owner=asha if seconds == 30 else None)
    make_lead("2026-10-12 08:00")  # not contacted
    original = make_lead("2026-10-12 07:00", contacted_after_s=10)
    make_lead("2026-10-12 09:00", contacted_after_s=10, duplicate_of=original)  # duplicates are not counted

    result = report(selectors.speed_to_lead, "2026-10-12", "2026-10-12")
    bins = {row["wait"]: row["leads"] for row in result.rows}
    assert bins == {
        "≤ 1 min": 2,
        "1–5 min": 2,
        "5–15 min": 0,
        "15–60 min": 1,
        "1–4 h": 0,
        "4–24 h": 0,
        "over 24 h": 1,
        "not contacted": 1,
    }
    assert result.totals["leads"] == 7 and result.totals["contacted"] == 6
    # (10 + 30 + 200 + 200 + 2000 + 90000) s / 6 leads / 60
    assert result.totals["mean_minutes"] == round(92_440 / 6 / 60, 1)
    assert result.totals["median"] == "1–5 min"
    assert result.totals["within_5m"] == round(100 * 4 / 7, 1)

    per_owner = report(selectors.speed_to_lead, "2026-10-12", "2026-10-12", rebuild=False, group_by="owner")
    rows = by(per_owner.rows, "owner")
    assert rows["Asha Rao"]["contacted"] == 1 and rows["Asha Rao"]["within_5m"] == 100.0
    assert rows["Unassigned"]["leads"] == 6


# Money -----------------------------------------------------------------------------------------------------------------


@pytest.fixture
def spend(org):
    """Campaigns A (200 spent on 10 Oct, 100 on 20 Nov) and B (100 on 11 Oct), their spend booked as recorded."""
    a = CampaignFactory(organization=org, name="A", ad_spend=Decimal("300"))
    b = CampaignFactory(organization=org, name="B", ad_spend=Decimal("100"))
    for campaign, day, amount in ((a, "2026-10-10", "200"), (a, "2026-11-20", "100"), (b, "2026-10-11", "100")):
        CampaignSpendDay.objects.unscoped().create(
            organization=org, campaign_id=campaign.pk, day=d(day), amount=Decimal(amount)
        )
    return a, b


def test_cost_per_lead_by_campaign_and_by_source(org, make_lead, report, spend):
    a, b = spend
    for source in ("facebook", "facebook", "facebook", "google_ads"):
        LeadDistributionFactory(organization=org, lead=make_lead("2026-10-12 08:00", source=source), campaign=a)
    LeadDistributionFactory(organization=org, lead=make_lead("2026-10-12 08:00", source="facebook"), campaign=b)
    make_lead("2026-10-12 08:00", source="api")
    make_lead("2026-10-13 08:00", source="api")

    by_campaign = report(selectors.cost_per_lead, "2026-10-01", "2026-10-31")
    rows = by(by_campaign.rows, "campaign")
    assert (rows["A"]["spend"], rows["A"]["leads"], rows["A"]["cost_per_lead"]) == (
        Decimal("200.00"),
        4,
        Decimal("50.00"),
    )
    assert rows["B"]["cost_per_lead"] == Decimal("100.00")
    assert rows["No campaign"]["spend"] == Decimal("0.00") and rows["No campaign"]["leads"] == 2
    assert by_campaign.totals == {"spend": Decimal("300.00"), "leads": 7, "cost_per_lead": Decimal("42.86")}

    by_source = report(selectors.cost_per_lead, "2026-10-01", "2026-10-31", rebuild=False, group_by="source")
    rows = by(by_source.rows, "source")
    # A's 200 is shared 3:1 between Facebook and Google Ads; B's 100 is all Facebook.
    assert rows["Facebook Lead Ads"]["spend"] == Decimal("250.00") and rows["Facebook Lead Ads"]["leads"] == 4
    assert rows["Google Ads"]["cost_per_lead"] == Decimal("50.00")
    assert rows["Supplier API"]["spend"] == Decimal("0.00")

    november = report(selectors.cost_per_lead, "2026-11-01", "2026-11-30", rebuild=False)
    assert by(november.rows, "campaign")["A"]["spend"] == Decimal("100.00")
    assert by(november.rows, "campaign")["A"]["cost_per_lead"] is None  # no leads: no CPL
    november = report(selectors.cost_per_lead, "2026-11-01", "2026-11-30", rebuild=False, group_by="source")
    assert by(november.rows, "source")["Campaigns with no leads in the range"]["spend"] == Decimal("100.00")


def test_spend_booking_spreads_what_was_there_and_books_changes_to_their_day(org):
    campaign = CampaignFactory(organization=org, ad_spend=Decimal("100"))
    type(campaign).objects.unscoped().filter(pk=campaign.pk).update(created_at=at("2026-10-16 06:00"))
    spend_book(organization=org, now=at("2026-10-18 06:00"))  # 16, 17, 18 October
    rows = CampaignSpendDay.objects.unscoped().filter(campaign_id=campaign.pk)
    assert dict(rows.values_list("day", "amount")) == {
        d("2026-10-16"): Decimal("33.33"),
        d("2026-10-17"): Decimal("33.33"),
        d("2026-10-18"): Decimal("33.34"),
    }
    type(campaign).objects.unscoped().filter(pk=campaign.pk).update(ad_spend=Decimal("130"))
    spend_book(organization=org, now=at("2026-10-21 06:00"))
    spend_book(organization=org, now=at("2026-10-21 07:00"))  # nothing changed since: nothing booked
    assert rows.get(day=d("2026-10-21")).amount == Decimal("30.00")
    assert sum(rows.values_list("amount", flat=True)) == Decimal("130")

    later = CampaignFactory(organization=org)  # seen with no spend: later spend belongs to the day it was recorded
    spend_book(organization=org, now=at("2026-10-21 07:00"))
    type(later).objects.unscoped().filter(pk=later.pk).update(ad_spend=Decimal("12.50"))
    spend_book(organization=org, now=at("2026-10-25 07:00"))
    assert dict(
        CampaignSpendDay.objects.unscoped().filter(campaign_id=later.pk).exclude(amount=0).values_list("day", "amount")
    ) == {d("2026-10-25"): Decimal("12.50")}


@pytest.fixture
def sales(org, make_lead):
    """Buyer X buys two leads at 10 (one returned and refunded), buyer Y one at 15; supplier S posted three leads
    (two accepted at a payout of 4), one of which X bought."""
    x, y = BuyerFactory(organization=org, name="X"), BuyerFactory(organization=org, name="Y")
    supplier = SupplierFactory(organization=org, name="S")
    campaign = CampaignFactory(organization=org, name="Sold")
    posted = []
    for outcome in ("accepted", "accepted", "rejected"):
        lead = make_lead("2026-10-12 08:00")
        CampaignSubmissionFactory(
            organization=org,
            submission=InboundSubmissionFactory(organization=org, lead=lead, status="accepted"),
            campaign=campaign,
            supplier=supplier,
            lead=lead,
            outcome=outcome,
            payout=Decimal("4.00") if outcome == "accepted" else Decimal("0"),
            created_at=at("2026-10-12 08:00"),
        )
        posted.append(lead)

    def sell(buyer, lead, price):
        distribution = LeadDistributionFactory(organization=org, lead=lead, campaign=campaign, status="sold")
        return LeadSaleFactory(
            organization=org,
            distribution=distribution,
            buyer=buyer,
            price=Decimal(price),
            created_at=at("2026-10-12 09:00"),
        )

    returned = sell(x, posted[0], "10.00")
    sell(x, make_lead("2026-10-12 08:00"), "10.00")
    sell(y, make_lead("2026-10-12 08:00"), "15.00")
    LeadReturnFactory(
        organization=org,
        sale=returned,
        status="approved",
        decided_at=at("2026-10-13 09:00"),
        refund_entry=WalletEntryFactory(
            organization=org, buyer=x, kind="refund", amount=Decimal("10.00"), balance_after=Decimal("10.00")
        ),
    )
    return campaign, supplier


def test_buyer_performance(sales, report):
    result = report(selectors.buyers, "2026-10-01", "2026-10-31")
    rows = by(result.rows, "buyer")
    assert rows["X"] == {
        "buyer": "X",
        "sold": 2,
        "returned": 1,
        "return_rate": 50.0,
        "revenue": Decimal("20.00"),
        "refunded": Decimal("10.00"),
        "net_revenue": Decimal("10.00"),
    }
    assert rows["Y"]["net_revenue"] == Decimal("15.00")
    assert [row["buyer"] for row in result.rows] == ["Y", "X"]  # by net revenue
    assert result.totals["sold"] == 3 and result.totals["net_revenue"] == Decimal("25.00")
    assert report(selectors.buyers, "2026-11-01", "2026-11-30", rebuild=False).rows == []


def test_supplier_profit(sales, report):
    _, supplier = sales
    result = report(selectors.suppliers, "2026-10-01", "2026-10-31")
    row = by(result.rows, "supplier")["S"]
    assert row == {
        "supplier": "S",
        "submitted": 3,
        "accepted": 2,
        "acceptance_rate": 66.7,
        "payout": Decimal("8.00"),
        "sold": 1,
        "net_revenue": Decimal("0.00"),  # its one sale was returned and refunded
        "profit": Decimal("-8.00"),
    }
    assert [row["supplier"] for row in result.rows] == ["S"]  # the other sales were of the organization's own leads
    only_s = report(selectors.suppliers, "2026-10-01", "2026-10-31", rebuild=False, supplier=supplier.pk)
    assert [row["supplier"] for row in only_s.rows] == ["S"]


def test_revenue_and_roi(org, make_lead, report, spend, sales):
    make_lead("2026-10-14 08:00", stage="Won", won_amount="1000")
    make_lead("2026-10-15 08:00", stage="Won", won_amount="500")
    result = report(selectors.revenue, "2026-10-01", "2026-10-31", granularity="month")
    assert len(result.rows) == 1
    row = result.rows[0]
    assert row["period"] == "2026-10"
    assert (row["won"], row["won_revenue"]) == (2, Decimal("1500.00"))
    assert (row["sold"], row["sales_revenue"], row["refunded"]) == (3, Decimal("35.00"), Decimal("10.00"))
    assert (row["ad_spend"], row["payouts"]) == (Decimal("300.00"), Decimal("8.00"))
    # revenue 1500 + 35 - 10 = 1525; cost 300 + 8 = 308
    assert row["revenue"] == Decimal("1525.00") and row["profit"] == Decimal("1217.00")
    assert row["roi"] == round(100 * 1217 / 308, 1)
    assert result.totals["roi"] == row["roi"]

    daily = report(selectors.revenue, "2026-10-10", "2026-10-15", rebuild=False, granularity="day")
    assert [r["ad_spend"] for r in daily.rows] == [
        Decimal(v) for v in ("200.00", "100.00", "0.00", "0.00", "0.00", "0.00")
    ]
    assert by(daily.rows, "period")["2026-10-12"]["sold"] == 3


def test_message_delivery_and_reply_rates(org, report):
    conversation = ConversationFactory(organization=org)
    for status, replied in (("delivered", True), ("read", False), ("failed", False), ("queued", False)):
        MessageFactory(
            organization=org,
            conversation=conversation,
            direction="out",
            status=status,
            replied_at=at("2026-10-12 10:00") if replied else None,
            created_at=at("2026-10-12 09:00"),
        )
    for _ in range(2):
        MessageFactory(organization=org, conversation=conversation, created_at=at("2026-10-12 09:30"))
    MessageFactory(
        organization=org,
        conversation=ConversationFactory(organization=org, channel="whatsapp"),
        channel="whatsapp",
        direction="out",
        status="read",
        replied_at=at("2026-10-12 10:00"),
        created_at=at("2026-10-12 09:00"),
    )
    result = report(selectors.messages, "2026-10-12", "2026-10-12")
    sms = by(result.rows, "channel")["SMS"]
    assert (sms["outbound"], sms["delivered"], sms["read"], sms["failed"], sms["replied"], sms["inbound"]) == (
        4,
        2,
        1,
        1,
        1,
        2,
    )
    assert (sms["delivery_rate"], sms["read_rate"], sms["reply_rate"]) == (50.0, 25.0, 25.0)
    assert by(result.rows, "channel")["WhatsApp"]["reply_rate"] == 100.0
    assert result.totals["outbound"] == 5 and result.totals["delivery_rate"] == 60.0
    only_whatsapp = report(selectors.messages, "2026-10-12", "2026-10-12", rebuild=False, channel="whatsapp")
    assert [row["channel"] for row in only_whatsapp.rows] == ["WhatsApp"]
