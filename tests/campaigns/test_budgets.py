"""Campaign budgets: recorded ad spend against the daily budget (the organization's day) and the total budget; the
automatic pause with the owners told, the daily pause lifting itself after midnight, raising a budget lifting it at
once, and never touching a campaign paused by hand or by billing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.db.models import Sum

from accounts.constants import Role
from campaigns.constants import PauseReason
from campaigns.models import Campaign, CampaignSpend
from campaigns.services import catalog
from campaigns.services.billing_pause import campaigns_pause_for_billing, campaigns_resume_after_billing
from campaigns.services.budgets import campaign_budget_enforce, campaign_spend_record, campaigns_budgets_enforce
from leadflow.exceptions import ServiceError
from messaging.models import Notification
from tests.conftest import member_of
from tests.factories import CampaignFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Asia/Kolkata is UTC+05:30: 18:29 UTC is 23:59 there, 18:30 UTC is the next day's midnight.
BEFORE_IST_MIDNIGHT = utc("2026-12-01 18:00")
AFTER_IST_MIDNIGHT = utc("2026-12-01 18:45")


def reload(campaign: Campaign) -> Campaign:
    return Campaign.objects.unscoped().get(pk=campaign.pk)


def state(campaign: Campaign) -> tuple[str, str]:
    campaign = reload(campaign)
    return campaign.status, campaign.pause_reason


def budget_notices(organization) -> list[Notification]:
    return list(Notification.objects.unscoped().filter(organization=organization, event="campaign_budget"))


@pytest.fixture
def campaign(organization, owner):
    return CampaignFactory(organization=organization, daily_budget=Decimal("50.00"), total_budget=Decimal("200.00"))


# The total budget -------------------------------------------------------------------------------------------------


def test_reaching_the_total_budget_pauses_and_tells_the_owners_once(
    organization, owner, campaign, django_capture_on_commit_callbacks
):
    manager = member_of(organization, Role.MANAGER)
    days = [utc(f"2026-11-{day:02d} 08:00") for day in (20, 21, 22, 23, 24)]
    for when in days[:4]:
        campaign_spend_record(campaign=campaign, amount="49.99", now=when)  # under the daily 50 every day
    assert state(campaign) == ("active", "") and reload(campaign).ad_spend == Decimal("199.96")
    with django_capture_on_commit_callbacks(execute=True):
        campaign_spend_record(campaign=campaign, amount="0.04", now=days[4])  # 200.00: the total budget
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    [notice] = budget_notices(organization)
    assert notice.user == owner and "total budget" in notice.title and notice.url == f"/campaigns/{campaign.pk}/"
    assert "200.00" in notice.body
    assert [message.to for message in mail.outbox] == [[owner.email]]
    assert not Notification.objects.unscoped().filter(user=manager).exists()
    # Spending more, and checking again, change nothing: one pause, one notice.
    campaign_spend_record(campaign=campaign, amount="5", now=days[4])
    assert campaign_budget_enforce(campaign=campaign, now=days[4]) is None
    assert campaigns_budgets_enforce(now=utc("2026-11-30 08:00")) == {"paused": 0, "resumed": 0}  # the next days
    assert state(campaign) == ("paused", PauseReason.BUDGET) and len(budget_notices(organization)) == 1


def test_raising_the_budget_resumes_at_once_and_lowering_it_pauses(organization, owner, campaign):
    campaign_spend_record(campaign=campaign, amount="40")
    catalog.campaign_save(campaign=campaign, data={"total_budget": Decimal("40.00")})
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    saved = catalog.campaign_save(campaign=reload(campaign), data={"total_budget": Decimal("60.00")})
    assert (saved.status, saved.pause_reason) == ("active", "")  # the returned row says so too
    catalog.campaign_save(campaign=reload(campaign), data={"daily_budget": Decimal("30.00")})  # today's 40 ≥ 30
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    catalog.campaign_save(campaign=reload(campaign), data={"daily_budget": None})
    assert state(campaign) == ("active", "")
    # Two pauses, two notices (a lowered budget is a new one to tell about).
    assert len(budget_notices(organization)) == 2


def test_a_person_cannot_resume_a_campaign_whose_budget_is_spent(client, organization, owner, campaign):
    campaign_spend_record(campaign=campaign, amount="50")
    with pytest.raises(ServiceError, match="raise the budget or wait for tomorrow"):
        catalog.campaign_resume(campaign=campaign)
    client.force_login(member_of(organization, Role.MANAGER))
    response = client.post(f"/campaigns/{campaign.pk}/status/", follow=True)
    assert "Its budget is spent" in response.content.decode()
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    catalog.campaign_pause(campaign=campaign, reason=PauseReason.MANUAL)  # pausing by hand still works
    assert state(campaign) == ("paused", PauseReason.MANUAL)


# The daily budget and the organization's day ------------------------------------------------------------------------


def test_todays_spend_is_counted_in_the_organizations_time_zone(owner):
    india = CampaignFactory(daily_budget=Decimal("50.00"))  # Asia/Kolkata
    utc_org = OrganizationFactory(timezone="Etc/UTC")
    member_of(utc_org, Role.OWNER)
    london_hours = CampaignFactory(organization=utc_org, daily_budget=Decimal("50.00"))
    for target in (india, london_hours):
        campaign_spend_record(campaign=target, amount="30", now=BEFORE_IST_MIDNIGHT)
        campaign_spend_record(campaign=target, amount="30", now=AFTER_IST_MIDNIGHT)
    # In India the second 30 fell on 2 December; in UTC both are 1 December's 60.
    assert list(CampaignSpend.objects.unscoped().filter(campaign=india).values_list("spent_on", flat=True)) == [
        date(2026, 12, 2),
        date(2026, 12, 1),
    ]
    assert state(india) == ("active", "")
    assert state(london_hours) == ("paused", PauseReason.BUDGET)


def test_a_daily_pause_lifts_itself_after_the_organizations_midnight(organization, owner, campaign):
    campaign_spend_record(campaign=campaign, amount="50", now=BEFORE_IST_MIDNIGHT)
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    [notice] = budget_notices(organization)
    assert "daily budget" in notice.title and "resumes tomorrow" in notice.body
    assert campaigns_budgets_enforce(now=utc("2026-12-01 18:29")) == {"paused": 0, "resumed": 0}  # 23:59 IST
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    assert campaigns_budgets_enforce(now=utc("2026-12-01 18:30")) == {"paused": 0, "resumed": 1}  # 00:00 IST
    assert state(campaign) == ("active", "")
    # Beat running again (or twice at once) resumes nothing more, and the owner was told once.
    assert campaigns_budgets_enforce(now=utc("2026-12-01 18:45")) == {"paused": 0, "resumed": 0}
    assert len(budget_notices(organization)) == 1
    # The new day's own spend pauses it again, and that is a new notice.
    campaign_spend_record(campaign=campaign, amount="50", now=AFTER_IST_MIDNIGHT)
    assert state(campaign) == ("paused", PauseReason.BUDGET) and len(budget_notices(organization)) == 2


def test_a_daily_pause_in_utc_waits_for_utc_midnight(owner):
    organization = OrganizationFactory(timezone="Etc/UTC")
    member_of(organization, Role.OWNER)
    campaign = CampaignFactory(organization=organization, daily_budget=Decimal("50.00"))
    campaign_spend_record(campaign=campaign, amount="50", now=BEFORE_IST_MIDNIGHT)
    campaigns_budgets_enforce(now=AFTER_IST_MIDNIGHT)  # midnight in India, 18:45 in UTC
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    campaigns_budgets_enforce(now=utc("2026-12-02 00:00"))
    assert state(campaign) == ("active", "")


def test_the_next_day_never_lifts_a_total_budget_a_manual_pause_or_a_billing_pause(organization, owner):
    spent_total = CampaignFactory(organization=organization, total_budget=Decimal("50.00"))
    by_hand = CampaignFactory(organization=organization, daily_budget=Decimal("50.00"))
    by_billing = CampaignFactory(organization=organization, daily_budget=Decimal("50.00"))
    for target in (spent_total, by_hand, by_billing):
        campaign_spend_record(campaign=target, amount="50", now=BEFORE_IST_MIDNIGHT)
    # Paused for budget, then by hand: the person's pause wins; and billing pauses whatever is still active.
    catalog.campaign_pause(campaign=by_hand, reason=PauseReason.MANUAL)
    Campaign.objects.unscoped().filter(pk=by_billing.pk).update(status="active", pause_reason="")
    campaigns_pause_for_billing(organization)
    campaigns_budgets_enforce(now=AFTER_IST_MIDNIGHT)
    assert state(spent_total) == ("paused", PauseReason.BUDGET)
    assert state(by_hand) == ("paused", PauseReason.MANUAL)
    assert state(by_billing) == ("paused", PauseReason.BILLING)


def test_a_campaign_billing_resumes_over_its_budget_is_paused_for_it_by_beat(organization, owner):
    campaign = CampaignFactory(organization=organization, total_budget=Decimal("50.00"))
    campaigns_pause_for_billing(organization)
    campaign_spend_record(campaign=campaign, amount="60")  # recorded while billing held it: not a budget pause
    assert state(campaign) == ("paused", PauseReason.BILLING) and not budget_notices(organization)
    campaigns_resume_after_billing(organization)
    assert campaigns_budgets_enforce() == {"paused": 1, "resumed": 0}
    assert state(campaign) == ("paused", PauseReason.BUDGET) and len(budget_notices(organization)) == 1


def test_an_automatic_resume_over_the_budget_leaves_it_paused_for_its_budget(organization, owner):
    campaign = CampaignFactory(organization=organization, total_budget=Decimal("50.00"))
    campaigns_pause_for_billing(organization)
    campaign_spend_record(campaign=campaign, amount="50")
    catalog.campaign_resume(campaign=campaign, only_if_reason=PauseReason.BILLING)
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    catalog.campaign_save(campaign=reload(campaign), data={"total_budget": Decimal("80.00")})
    assert state(campaign) == ("active", "")


# Recording spend ------------------------------------------------------------------------------------------------


def test_editing_the_total_spend_records_the_difference_as_todays(organization, owner):
    campaign = CampaignFactory(organization=organization)
    catalog.campaign_save(campaign=campaign, data={"ad_spend": Decimal("30.00")})
    catalog.campaign_save(campaign=reload(campaign), data={"ad_spend": Decimal("45.00")})
    catalog.campaign_save(campaign=reload(campaign), data={"ad_spend": Decimal("40.00")})
    catalog.campaign_save(campaign=reload(campaign), data={"ad_spend": Decimal("40.00"), "name": "Renamed"})
    entries = CampaignSpend.objects.unscoped().filter(campaign=campaign).order_by("id")
    assert [(entry.amount, entry.total_after) for entry in entries] == [
        (Decimal("30.00"), Decimal("30.00")),
        (Decimal("15.00"), Decimal("45.00")),
        (Decimal("-5.00"), Decimal("40.00")),
    ]
    assert entries.aggregate(total=Sum("amount"))["total"] == reload(campaign).ad_spend == Decimal("40.00")
    created = catalog.campaign_save(
        campaign=Campaign(organization=organization),
        data={"category": campaign.category, "name": "New", "price_per_lead": Decimal("5"), "ad_spend": Decimal("12")},
    )
    assert list(CampaignSpend.objects.unscoped().filter(campaign=created).values_list("amount", flat=True)) == [
        Decimal("12.00")
    ]


def test_spend_is_refused_below_zero_in_the_future_or_as_nothing(organization, owner, campaign):
    with pytest.raises(ServiceError, match="below zero"):
        campaign_spend_record(campaign=campaign, amount="-1")
    with pytest.raises(ServiceError, match="today or an earlier day"):
        campaign_spend_record(campaign=campaign, amount="5", spent_on=date(2026, 12, 2), now=BEFORE_IST_MIDNIGHT)
    with pytest.raises(ServiceError, match="other than zero"):
        campaign_spend_record(campaign=campaign, amount="0")
    campaign_spend_record(campaign=campaign, amount="10", spent_on=date(2026, 11, 30), now=BEFORE_IST_MIDNIGHT)
    campaign_spend_record(campaign=campaign, amount="10", now=BEFORE_IST_MIDNIGHT)
    with pytest.raises(ServiceError, match="cannot take that day below zero"):
        campaign_spend_record(campaign=campaign, amount="-15", spent_on=date(2026, 11, 30), now=BEFORE_IST_MIDNIGHT)
    assert reload(campaign).ad_spend == Decimal("20.00")


def test_spend_recorded_for_an_earlier_day_counts_in_the_total_but_not_today(organization, owner, campaign):
    campaign_spend_record(campaign=campaign, amount="60", spent_on=date(2026, 11, 30), now=BEFORE_IST_MIDNIGHT)
    assert state(campaign) == ("active", "")  # 60 over the daily 50, but not today's
    campaign_spend_record(campaign=campaign, amount="140", spent_on=date(2026, 11, 29), now=BEFORE_IST_MIDNIGHT)
    assert state(campaign) == ("paused", PauseReason.BUDGET)  # the total 200


# The campaign page --------------------------------------------------------------------------------------------------


@pytest.fixture
def manager_page(client, organization):
    client.force_login(member_of(organization, Role.MANAGER))
    return client


def test_the_page_shows_budget_used_today_and_in_total(manager_page, campaign):
    campaign_spend_record(campaign=campaign, amount="20")
    campaign_spend_record(campaign=campaign, amount="15", spent_on=date(2020, 1, 1))
    html = manager_page.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert '<progress value="40" max="100" aria-label="Daily budget used"' in html  # 20 of 50
    assert '<progress value="18" max="100" aria-label="Total budget used"' in html  # 35 of 200, rounded
    assert "20.00 of 50.00 INR" in html and "35.00 of 200.00 INR" in html
    unlimited = CampaignFactory(organization=campaign.organization)
    html = manager_page.get(f"/campaigns/{unlimited.pk}/").content.decode()
    assert "no daily budget" in html and "no total budget" in html and "<progress" not in html


def test_recording_spend_on_the_page_pauses_at_the_budget_and_shows_errors(manager_page, organization, campaign):
    response = manager_page.post(f"/campaigns/{campaign.pk}/spend/", {"amount": "50"}, follow=True)
    body = response.content.decode()
    assert "Ad spend recorded." in body and "its budget is spent" in body
    assert state(campaign) == ("paused", PauseReason.BUDGET)
    assert '<progress value="100" max="100" aria-label="Daily budget used" class="budget-spent">' in body
    bad = manager_page.post(f"/campaigns/{campaign.pk}/spend/", {"amount": ""})
    assert bad.status_code == 400 and bad.context["spend_form"].errors["amount"]
    refused = manager_page.post(f"/campaigns/{campaign.pk}/spend/", {"amount": "-80"})
    assert refused.status_code == 400 and "below zero" in str(refused.context["spend_form"].errors["amount"])
    assert reload(campaign).ad_spend == Decimal("50.00")
    theirs = CampaignFactory(organization=OrganizationFactory())
    assert manager_page.post(f"/campaigns/{theirs.pk}/spend/", {"amount": "5"}).status_code == 404
    assert not CampaignSpend.objects.unscoped().filter(campaign=theirs).exists()


def test_raising_the_budget_in_the_campaign_settings_resumes_it(manager_page, campaign):
    campaign_spend_record(campaign=campaign, amount="50")
    fields = {
        "category": campaign.category_id,
        "name": campaign.name,
        "price_per_lead": "10.00",
        "distribution_logic": "round_robin",
        "ad_channel": "other",
        "daily_budget": "75.00",
        "total_budget": "200.00",
        "ad_spend": "50.00",
        "return_window_hours": "72",
        "redistribute_max_rounds": "3",
    }
    assert manager_page.post(f"/campaigns/{campaign.pk}/", fields).status_code == 302
    assert state(campaign) == ("active", "")
    assert CampaignSpend.objects.unscoped().filter(campaign=campaign).count() == 1  # the unchanged spend: no row
