"""What a distribution touches: only the wallets its strategy reaches, its campaign's subscriptions from memory for as
long as their version holds, and a handful of statements however many buyers subscribe."""

from __future__ import annotations

import importlib
import re
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from campaigns.models import Buyer, BuyerSubscription, Campaign, Wallet
from campaigns.services.distribution import (
    SUBSCRIPTION_COLUMNS,
    campaign_members,
    campaign_members_forget,
    lead_distribute,
)
from campaigns.services.wallets import wallet_credit
from leadflow.sql import executed_statements
from tests.factories import BuyerFactory, BuyerSubscriptionFactory, CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

version_migration = importlib.import_module("campaigns.migrations.0006_campaign_subscriptions_version")


def wallets_free(buyer_ids) -> set[int]:
    """The buyers whose wallet another connection can lock right now (``SKIP LOCKED`` leaves out those held)."""
    free: list[int] = []

    def look():
        try:
            with transaction.atomic():
                locked = Wallet.objects.unscoped().select_for_update(skip_locked=True).filter(buyer_id__in=buyer_ids)
                free.extend(locked.values_list("buyer_id", flat=True))
        finally:
            connection.close()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join(timeout=30)
    return set(free)


def ran(captured) -> list[str]:
    """Every statement the captured queries ran, prepared ones as their text (``leadflow.sql``); the ``PREPARE`` of a
    statement a connection runs for the first time is left out."""
    return [
        statement
        for q in captured.captured_queries
        for statement in executed_statements(q["sql"])
        if not statement.startswith("PREPARE ")
    ]


def statements(captured, table: str) -> list[str]:
    return [sql for sql in ran(captured) if f'"{table}"' in sql or f" {table} " in sql]


def wallet_locks(sqls) -> list[str]:
    return [sql for sql in sqls if "FOR UPDATE" in sql and "campaigns_wallet" in sql]


# Lazy: only the buyers reached ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("logic", ["round_robin", "waterfall"])
def test_a_one_buyer_strategy_locks_only_the_wallets_it_reaches(organization, market, logic):
    # Fifty buyers; the first two in the strategy's order cannot pay, so it reaches three and sells to the third.
    specs = [{"daily_cap": 1000, "priority": n} for n in range(50)]
    specs[0]["funds"] = specs[1]["funds"] = "5.00"  # the price is 10
    campaign, subs = market(logic, buyers=specs)
    buyer_ids = [sub.buyer_id for sub in subs]
    with transaction.atomic():  # the locks are held until this commits
        outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
        free = wallets_free(buyer_ids)
    assert [sale.buyer_id for sale in outcome.sales] == [subs[2].buyer_id]
    assert set(buyer_ids) - free == {subs[0].buyer_id, subs[1].buyer_id, subs[2].buyer_id}
    assert outcome.reasons[str(subs[0].buyer_id)] == outcome.reasons[str(subs[1].buyer_id)] == "insufficient_funds"
    assert {outcome.reasons[str(sub.buyer_id)] for sub in subs[3:]} == {"not_chosen"}
    assert wallets_free(buyer_ids) == set(buyer_ids)  # and released on commit


@pytest.mark.django_db(transaction=True)
def test_broadcast_locks_every_contender(organization, market):
    campaign, subs = market("broadcast", buyers=[{}, {}, {"is_active": False}])
    buyer_ids = [sub.buyer_id for sub in subs]
    with transaction.atomic():
        outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
        free = wallets_free(buyer_ids)
    assert len(outcome.sales) == 2
    assert free == {subs[2].buyer_id}  # the paused subscription was never in the running


def test_fifty_buyers_cost_a_handful_of_statements(organization, market, django_assert_max_num_queries):
    campaign, subs = market("round_robin", buyers=[{"daily_cap": 100} for _ in range(50)])
    lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)  # the routing row, the memory
    lead = LeadFactory(organization=organization)
    # Round trips: savepoint; the routing lock and then the campaign with the lead's owners; one wallet with its
    # caps; the sale (which checks the lead's owners again itself); release.
    with django_assert_max_num_queries(5) as captured:
        outcome = lead_distribute(lead=lead, campaign=campaign)
    assert outcome.sold and len(outcome.reasons) == 49
    assert outcome.sales[0].subscription_id == subs[1].pk
    assert not statements(captured, "campaigns_buyersubscription")  # from memory
    sqls = ran(captured)
    [routing_lock] = [sql for sql in sqls if "FOR UPDATE" in sql and "campaigns_campaignroutingstate" in sql]
    # The campaign is read by the next statement, after the lock is held (its own snapshot).
    assert "FROM campaigns_campaign campaign" in sqls[sqls.index(routing_lock) + 1]
    [lock] = wallet_locks(sqls)
    assert "campaigns_leadsale" in lock  # the caps are counted in the lock's own statement


def test_known_owners_are_turned_away_without_a_lock(organization, market):
    campaign, subs = market("round_robin", buyers=[{}, {}])
    first = LeadFactory(organization=organization, email="asha@example.com", phone="+919800000001")
    assert lead_distribute(lead=first, campaign=campaign).sales[0].buyer_id == subs[0].buyer_id
    lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)  # subs[1]; next is subs[0]
    again = LeadFactory(organization=organization, email="asha@example.com", phone="")
    with CaptureQueriesContext(connection) as captured:
        outcome = lead_distribute(lead=again, campaign=campaign)
    assert [s.buyer_id for s in outcome.sales] == [subs[1].buyer_id]
    assert outcome.reasons == {str(subs[0].buyer_id): "already_bought"}
    [lock] = wallet_locks(ran(captured))
    assert f"EXECUTE ({organization.pk}, {subs[1].buyer_id})" in lock


@pytest.mark.django_db(transaction=True)
def test_a_free_lower_wallet_is_taken_and_a_busy_one_is_waited_for_in_order(organization):
    """The lazy apply holds a higher buyer's wallet and reaches a lower one that someone else holds: it never waits
    out of order (that could deadlock), it starts again locking both in order, and sells once the holder is done."""
    campaign = CampaignFactory(organization=organization, distribution_logic="round_robin")
    low, high = BuyerFactory(organization=organization), BuyerFactory(organization=organization)
    wallet_credit(buyer=low, amount="100")
    wallet_credit(buyer=high, amount="5")  # cannot pay 10: reached first, then passed over
    BuyerSubscriptionFactory(organization=organization, buyer=high, campaign=campaign)  # the lower subscription id
    BuyerSubscriptionFactory(organization=organization, buyer=low, campaign=campaign)
    assert low.pk < high.pk

    holding, release = threading.Event(), threading.Event()

    def hold_low_wallet():
        try:
            with transaction.atomic():
                Wallet.objects.unscoped().select_for_update().get(buyer=low)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    outcome, captured = {}, {}

    def distribute():
        try:
            with CaptureQueriesContext(connection) as queries:
                outcome["value"] = lead_distribute(lead=lead, campaign=campaign)
            captured["sql"] = ran(queries)
        except Exception as error:
            outcome["error"] = repr(error)
        finally:
            connection.close()

    lead = LeadFactory(organization=organization)
    holder = threading.Thread(target=hold_low_wallet)
    holder.start()
    assert holding.wait(timeout=30)
    seller = threading.Thread(target=distribute)
    seller.start()
    time.sleep(0.5)
    assert seller.is_alive()  # waiting, in order, for the low wallet
    release.set()
    holder.join(timeout=30)
    seller.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    sold = outcome["value"]
    assert [s.buyer_id for s in sold.sales] == [low.pk]
    assert sold.reasons == {str(high.pk): "insufficient_funds"}
    locks = wallet_locks(captured["sql"])
    assert "SKIP LOCKED" in locks[1]  # the lazy apply took the low wallet only if free ...
    [locked_together] = re.findall(r'"buyer_id" IN \(([^)]*)\)', locks[-1])  # ... then both at once, in order
    assert "SKIP LOCKED" not in locks[-1] and set(locked_together.split(", ")) == {str(low.pk), str(high.pk)}


@pytest.mark.django_db(transaction=True)
def test_a_sale_of_the_lead_elsewhere_while_the_wallet_was_awaited_is_seen(organization, market, monkeypatch):
    """The lead is sold to the chosen buyer in another campaign, committed after this distribution read the lead's
    owners but before it held that buyer's wallet: the sale's own statement refuses it, and the whole apply runs
    again examining everyone, so the next buyer gets the lead."""
    from campaigns.services import distribution
    from tests.factories import LeadSaleFactory

    campaign, subs = market("round_robin", buyers=[{}, {}])
    lead = LeadFactory(organization=organization)
    elsewhere = CampaignFactory(organization=organization)
    real_lock = distribution._wallet_lock_counting_caps

    def sold_elsewhere_meanwhile():
        try:
            LeadSaleFactory(
                organization=organization,
                distribution__lead=lead,
                distribution__campaign=elsewhere,
                buyer=subs[0].buyer,
            )
        finally:
            connection.close()

    def lock_after_a_sale_elsewhere(member, **kwargs):
        if member.subscription.buyer_id == subs[0].buyer_id and not kwargs.get("skip_locked"):
            thread = threading.Thread(target=sold_elsewhere_meanwhile)
            thread.start()
            thread.join(timeout=30)
        return real_lock(member, **kwargs)

    monkeypatch.setattr(distribution, "_wallet_lock_counting_caps", lock_after_a_sale_elsewhere)
    outcome = lead_distribute(lead=lead, campaign=campaign)
    assert [s.buyer_id for s in outcome.sales] == [subs[1].buyer_id]
    assert outcome.reasons == {str(subs[0].buyer_id): "already_bought"}
    wallet = Wallet.objects.unscoped().get(buyer=subs[0].buyer)
    assert wallet.balance == Decimal("1000.00")  # the refused sale debited nothing


# In memory, checked by version ----------------------------------------------------------------------------------------


def test_subscriptions_come_from_memory_until_their_version_moves(organization, market):
    campaign, subs = market("broadcast", buyers=[{}, {}])
    lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    with CaptureQueriesContext(connection) as captured:
        lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert not statements(captured, "campaigns_buyersubscription")
    # Changed behind every service's back (no signal, no save): the database moves the version, the next lead sees it.
    BuyerSubscription.objects.unscoped().filter(pk=subs[0].pk).update(is_active=False)
    Buyer.objects.unscoped().filter(pk=subs[1].buyer_id).update(status="paused")
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert not outcome.sold and set(outcome.reasons.values()) == {"paused"}
    late = BuyerSubscriptionFactory(organization=organization, campaign=campaign)
    wallet_credit(buyer=late.buyer, amount="50")
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert [s.buyer_id for s in outcome.sales] == [late.buyer_id]


def version(campaign) -> int:
    return Campaign.objects.unscoped().values_list("subscriptions_version", flat=True).get(pk=campaign.pk)


def test_every_buyer_setting_distribution_reads_moves_the_version(organization, market):
    read = tuple(name.removeprefix("buyer__") for name in SUBSCRIPTION_COLUMNS if name.startswith("buyer__"))
    assert set(read) - {"id", "organization_id"} == set(version_migration.BUYER_COLUMNS)
    campaign, [sub] = market("round_robin", buyers=[{}])
    changes = {
        "name": "Renamed",
        "status": "paused",
        "timezone": "Asia/Kolkata",
        "credit_limit": Decimal("5"),
        "weekly_spend_limit": Decimal("100"),
        "monthly_spend_limit": Decimal("400"),
        "low_balance_threshold": Decimal("20"),
        "auto_recharge_threshold": Decimal("10"),
    }
    for column, value in changes.items():
        before = version(campaign)
        Buyer.objects.unscoped().filter(pk=sub.buyer_id).update(**{column: value})
        assert version(campaign) > before, column
    before = version(campaign)
    Buyer.objects.unscoped().filter(pk=sub.buyer_id).update(auto_recharge_amount=Decimal("50"))
    Buyer.objects.unscoped().filter(pk=sub.buyer_id).update(auto_recharge_enabled=True)
    assert version(campaign) > before
    before = version(campaign)
    Buyer.objects.unscoped().filter(pk=sub.buyer_id).update(company="Not read by distribution")
    assert version(campaign) == before


def test_subscription_changes_move_their_campaigns_versions(organization, market):
    first, [sub] = market("round_robin", buyers=[{}])
    second, _ = market("round_robin", buyers=[])
    before_first, before_second = version(first), version(second)
    BuyerSubscription.objects.unscoped().filter(pk=sub.pk).update(campaign=second)  # moved: both change
    assert version(first) > before_first and version(second) > before_second
    before = version(second)
    BuyerSubscription.objects.unscoped().filter(pk=sub.pk).delete()
    assert version(second) > before


def test_a_stale_campaign_save_never_lowers_the_version(organization, market):
    campaign, _ = market("round_robin", buyers=[{}])
    stale = Campaign.objects.unscoped().get(pk=campaign.pk)
    BuyerSubscriptionFactory(organization=organization, campaign=campaign)
    moved = version(campaign)
    assert moved > stale.subscriptions_version
    stale.name = "Renamed from an old form"
    stale.save()
    assert version(campaign) == moved


def test_memory_is_reloaded_when_the_version_under_the_lock_differs(organization, market):
    campaign, subs = market("round_robin", buyers=[{}])
    remembered = campaign_members(campaign.pk)
    assert [m.subscription.pk for m in remembered] == [subs[0].pk]
    added = BuyerSubscriptionFactory(organization=organization, campaign=campaign)
    assert campaign_members(campaign.pk) is remembered  # no version given: what the process remembers
    fresh = campaign_members(campaign.pk, version=version(campaign))
    assert [m.subscription.pk for m in fresh] == [subs[0].pk, added.pk]
    assert campaign_members(campaign.pk, version=version(campaign)) is fresh
    campaign_members_forget()
    assert campaign_members(campaign.pk) is not fresh
