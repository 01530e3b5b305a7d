"""The transactional apply: each rule of the engine, end to end on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from campaigns.constants import PauseReason
from campaigns.models import CampaignRoutingState, Category, LeadSale, Wallet, WalletEntry
from campaigns.selectors import campaign_cost_per_lead, campaign_figures, ledger_sum
from campaigns.services.catalog import campaign_pause, campaign_resume
from campaigns.services.distribution import lead_distribute
from campaigns.services.wallets import (
    InsufficientFunds,
    wallet_adjust,
    wallet_credit,
    wallet_debit,
    wallet_refund,
)
from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope
from tests.factories import (
    BuyerFactory,
    BuyerSubscriptionFactory,
    CategoryFactory,
    LeadFactory,
    OrganizationFactory,
)

pytestmark = pytest.mark.django_db


def balance(buyer) -> Decimal:
    return Wallet.objects.unscoped().get(buyer=buyer).balance


def test_round_robin_rotates_and_its_position_lives_in_the_database(organization, market):
    campaign, subs = market("round_robin", buyers=[{}, {}, {}])
    winners = [lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign) for _ in range(4)]
    assert [o.sales[0].subscription_id for o in winners] == [subs[0].pk, subs[1].pk, subs[2].pk, subs[0].pk]
    # A restarted process reads the rotation from the row and carries on.
    assert CampaignRoutingState.objects.unscoped().get(campaign=campaign).last_subscription_id == subs[0].pk
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert outcome.sales[0].subscription_id == subs[1].pk
    assert outcome.sold and outcome.revenue == Decimal("10.00")
    assert outcome.reasons == {str(subs[0].buyer_id): "not_chosen", str(subs[2].buyer_id): "not_chosen"}


def test_weighted_follows_the_weights(organization, market):
    campaign, subs = market("weighted", buyers=[{"weight": 3}, {"weight": 1}])
    sold = Counter(
        lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign).sales[0].buyer_id
        for _ in range(8)
    )
    assert sold == {subs[0].buyer_id: 6, subs[1].buyer_id: 2}


def test_distributing_again_returns_the_stored_outcome(organization, market):
    campaign, subs = market("round_robin", buyers=[{}, {}])
    lead = LeadFactory(organization=organization)
    first = lead_distribute(lead=lead, campaign=campaign)
    again = lead_distribute(lead=lead, campaign=campaign)
    assert not first.replayed and again.replayed
    assert again.sales == first.sales and again.distribution_id == first.distribution_id
    assert LeadSale.objects.unscoped().filter(lead=lead).count() == 1
    assert balance(subs[0].buyer) == Decimal("990.00")


def test_caps_are_never_exceeded(organization, market):
    campaign, subs = market("round_robin", buyers=[{"daily_cap": 1}, {"hourly_cap": 2, "monthly_cap": 100}])
    outcomes = [lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign) for _ in range(4)]
    assert [o.sold for o in outcomes] == [True, True, True, False]
    assert outcomes[3].reasons == {str(subs[0].buyer_id): "capped", str(subs[1].buyer_id): "capped"}


def test_insufficient_funds_and_credit_limit(organization, market):
    campaign, subs = market(
        "waterfall", buyers=[{"funds": "15.00", "priority": 1}, {"funds": "0", "credit_limit": "10"}]
    )
    outcomes = [lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign) for _ in range(3)]
    first, second = subs[0].buyer, subs[1].buyer
    assert [o.sales[0].buyer_id if o.sold else None for o in outcomes] == [first.pk, second.pk, None]
    assert outcomes[2].reasons == {str(first.pk): "insufficient_funds", str(second.pk): "insufficient_funds"}
    # The second buyer bought on credit, down to its limit and no further.
    assert balance(first) == Decimal("5.00") and balance(second) == Decimal("-10.00")


def test_schedule_is_read_in_the_buyers_time_zone(organization, market):
    # 03:30 UTC is 09:00 in Kolkata and 19:30 the day before in Los Angeles.
    campaign, subs = market(
        "broadcast",
        buyers=[
            {"timezone": "Asia/Kolkata", "schedule_start": time(9), "schedule_end": time(17)},
            {"timezone": "America/Los_Angeles", "schedule_start": time(9), "schedule_end": time(17)},
        ],
    )
    now = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign, now=now)
    assert [s.buyer_id for s in outcome.sales] == [subs[0].buyer_id]
    assert outcome.reasons == {str(subs[1].buyer_id): "outside_schedule"}


def test_states_and_field_filters(organization, market):
    campaign, subs = market(
        "broadcast",
        buyers=[
            {"states": ["CA", "NV"]},
            {"field_filters": [{"field": "custom.age", "operator": "gte", "value": "65"}]},
            {"field_filters": [{"field": "custom.coverage", "operator": "in", "value": "basic, full"}]},
        ],
        buyers_pick_states=True,
    )
    lead = LeadFactory(organization=organization, state="tx", custom={"age": "70", "coverage": "none"})
    outcome = lead_distribute(lead=lead, campaign=campaign)
    assert [s.buyer_id for s in outcome.sales] == [subs[1].buyer_id]
    assert outcome.reasons == {str(subs[0].buyer_id): "state_not_wanted", str(subs[2].buyer_id): "filtered_out"}
    lead = LeadFactory(organization=organization, state="ca", custom={"age": 40, "coverage": "Full"})
    outcome = lead_distribute(lead=lead, campaign=campaign)
    assert {s.buyer_id for s in outcome.sales} == {subs[0].buyer_id, subs[2].buyer_id}


def test_states_are_ignored_unless_the_campaign_lets_buyers_pick(organization, market):
    campaign, _ = market("round_robin", buyers=[{"states": ["CA"]}])
    outcome = lead_distribute(lead=LeadFactory(organization=organization, state="TX"), campaign=campaign)
    assert outcome.sold


def test_a_buyer_is_never_sold_the_same_person_twice(organization, market):
    campaign, _ = market("broadcast", buyers=[{}, {}])
    first = LeadFactory(organization=organization, email="asha@example.com", phone="+919800000001")
    assert len(lead_distribute(lead=first, campaign=campaign).sales) == 2
    # The same phone with another email is the same person.
    again = LeadFactory(organization=organization, email="other@example.com", phone="+919800000001")
    outcome = lead_distribute(lead=again, campaign=campaign)
    assert not outcome.sold
    assert set(outcome.reasons.values()) == {"already_bought"}
    # A new buyer can still buy that person.
    late = BuyerFactory(organization=organization)
    wallet_credit(buyer=late, amount="50")
    BuyerSubscriptionFactory(organization=organization, buyer=late, campaign=campaign)
    third = LeadFactory(organization=organization, email="asha@example.com", phone="")
    assert [s.buyer_id for s in lead_distribute(lead=third, campaign=campaign).sales] == [late.pk]


def test_paused_campaign_buyer_and_subscription(organization, market):
    campaign, subs = market("broadcast", buyers=[{}, {"is_active": False}, {"status": "paused"}])
    campaign_pause(campaign=campaign, reason=PauseReason.BILLING)
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert not outcome.sold and set(outcome.reasons.values()) == {"paused"} and len(outcome.reasons) == 3
    campaign_resume(campaign=campaign, only_if_reason=PauseReason.MANUAL)  # billing's pause stays
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    campaign_resume(campaign=campaign, only_if_reason=PauseReason.BILLING)
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert [s.buyer_id for s in outcome.sales] == [subs[0].buyer_id]
    assert outcome.reasons == {str(subs[1].buyer_id): "paused", str(subs[2].buyer_id): "paused"}


def test_price_override_and_zero_price(organization, market):
    campaign, subs = market("broadcast", buyers=[{"price_override": Decimal("25.50")}, {"price_override": 0}])
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    prices = {s.buyer_id: s.price for s in outcome.sales}
    assert prices == {subs[0].buyer_id: Decimal("25.50"), subs[1].buyer_id: Decimal("0.00")}
    assert balance(subs[0].buyer) == Decimal("974.50") and balance(subs[1].buyer) == Decimal("1000.00")
    assert outcome.revenue == Decimal("25.50")


def test_unsold_with_no_buyers_and_other_organization_refused(organization, market):
    campaign, _ = market("round_robin", buyers=[])
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert outcome.status == "unsold" and outcome.reasons == {} and outcome.sales == ()
    with pytest.raises(ServiceError):
        lead_distribute(lead=LeadFactory(organization=OrganizationFactory()), campaign=campaign)


def test_cost_per_lead_and_figures(organization, market):
    campaign, _ = market("round_robin", buyers=[{"daily_cap": 1}], ad_spend=Decimal("90.00"))
    with organization_scope(organization):
        assert campaign_cost_per_lead(campaign) is None
        for _ in range(3):
            lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
        assert campaign_cost_per_lead(campaign) == Decimal("30.00")
        figures = campaign_figures(campaign)
    assert (figures["leads"], figures["sold"], figures["unsold"]) == (3, 1, 2)
    assert figures["revenue"] == Decimal("10.00") and figures["unsold_reasons"] == {"capped": 2}


# Wallets -------------------------------------------------------------------------------------------------------------


def test_wallet_balance_always_equals_the_ledger(organization):
    buyer = BuyerFactory(organization=organization, credit_limit=Decimal("20"))
    lead = LeadFactory(organization=organization)
    wallet_credit(buyer=buyer, amount="100")
    wallet_debit(buyer=buyer, amount="30.25", lead=lead)
    wallet_refund(buyer=buyer, amount="30.25", lead=lead, note="Returned: wrong number")
    wallet_adjust(buyer=buyer, amount="-5", note="Goodwill correction")
    wallet_debit(buyer=buyer, amount="115")  # down to -20, the credit limit
    with pytest.raises(InsufficientFunds):
        wallet_debit(buyer=buyer, amount="0.01")
    with pytest.raises(InsufficientFunds):
        wallet_adjust(buyer=buyer, amount="-1", note="too far")
    with pytest.raises(ServiceError):
        wallet_credit(buyer=buyer, amount="0")
    with organization_scope(organization):
        assert ledger_sum(buyer) == balance(buyer) == Decimal("-20.00")
    entries = list(WalletEntry.objects.unscoped().filter(buyer=buyer).order_by("id"))
    assert [e.kind for e in entries] == ["credit", "debit", "refund", "adjustment", "debit"]
    assert [e.balance_after for e in entries] == [Decimal(x) for x in ("100", "69.75", "100", "95", "-20")]


def test_ledger_entries_are_immutable(organization):
    buyer = BuyerFactory(organization=organization)
    entry = wallet_credit(buyer=buyer, amount="10")
    entry.note = "changed"
    with pytest.raises(ValidationError):
        entry.save()
    with pytest.raises(ValidationError):
        entry.delete()


# Category schema -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        [{"name": "Age", "type": "number"}],
        [{"name": "age", "type": "integer"}],
        [{"name": "plan", "type": "choice"}],
        [{"name": "plan", "type": "text", "choices": ["a"]}],
        [{"name": "age", "type": "number"}, {"name": "age", "type": "text"}],
        [{"name": "age", "type": "number", "required": "yes"}],
        {"age": "number"},
    ],
)
def test_category_schema_is_validated_on_save(organization, fields):
    with pytest.raises(ValidationError):
        Category(organization=organization, name="Solar", slug="solar", fields=fields).save()


def test_valid_category_schema_saves(organization):
    category = CategoryFactory(
        organization=organization,
        fields=[
            {"name": "age", "label": "Age", "type": "number", "required": True},
            {"name": "plan", "type": "choice", "choices": ["a", "b"]},
            {"name": "dob", "type": "date"},
            {"name": "owner", "type": "boolean"},
        ],
    )
    assert category.pk


def test_queries_per_lead_do_not_grow_with_buyers(organization, market, django_assert_max_num_queries):
    """Fifty subscribed buyers cost the same handful of queries as one: the apply stays within the ingest's budget."""
    campaign, _ = market("weighted", buyers=[{"daily_cap": 100, "weight": 1 + n % 10} for n in range(50)])
    lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)  # creates the routing row
    lead = LeadFactory(organization=organization)
    with django_assert_max_num_queries(16):
        outcome = lead_distribute(lead=lead, campaign=campaign)
    assert outcome.sold and len(outcome.reasons) == 49
    routing = CampaignRoutingState.objects.unscoped().get(campaign=campaign)
    assert len(routing.current_weights) == 50 and sum(routing.current_weights.values()) == 0


def test_services_refuse_another_organizations_rows(organization):
    from campaigns.models import BuyerSubscription, Campaign
    from campaigns.services.catalog import campaign_save, subscription_save
    from tests.factories import CampaignFactory

    theirs = OrganizationFactory()
    with pytest.raises(ServiceError):
        campaign_save(
            campaign=Campaign(organization=organization),
            data={"name": "C", "price_per_lead": Decimal("1"), "category": CategoryFactory(organization=theirs)},
        )
    with pytest.raises(ServiceError):
        subscription_save(
            subscription=BuyerSubscription(organization=organization),
            data={"buyer": BuyerFactory(organization=theirs), "campaign": CampaignFactory(organization=organization)},
        )


def test_weighted_state_forgets_deleted_subscriptions(organization, market):
    from campaigns.services.catalog import catalog_delete

    campaign, subs = market("weighted", buyers=[{"weight": 2}, {"weight": 1}, {"weight": 1}])
    for _ in range(3):
        lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    routing = CampaignRoutingState.objects.unscoped().get(campaign=campaign)
    assert set(routing.current_weights) == {str(sub.pk) for sub in subs}
    catalog_delete(instance=subs[2])
    lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    routing.refresh_from_db()
    assert set(routing.current_weights) == {str(subs[0].pk), str(subs[1].pk)}


def test_the_one_statement_sale_writes_what_the_model_path_writes(organization, market):
    """A single paid sale is written in one SQL statement, other outcomes through the models: same rows either way."""
    from campaigns.models import BuyerContact, LeadDistribution

    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    single, [alone] = market("round_robin", buyers=[{"funds": "100.00"}])
    shared, [first, _second] = market("broadcast", buyers=[{"funds": "100.00"}, {"funds": "100.00"}])
    for sub in (alone, first):
        sub.buyer.low_balance_threshold = Decimal("95.00")
        sub.buyer.save()

    def written(campaign, sub, lead):
        sale = (
            LeadSale.objects.unscoped().select_related("wallet_entry", "distribution").get(lead=lead, buyer=sub.buyer)
        )
        wallet = Wallet.objects.unscoped().get(buyer=sub.buyer)
        entry = sale.wallet_entry
        keys = set(BuyerContact.objects.unscoped().filter(sale=sale).values_list("contact_key", flat=True))
        return {
            "sale": (sale.price, sale.subscription_id == sub.pk, sale.created_at, sale.deliveries_planned_at),
            "entry": (entry.kind, entry.amount, entry.balance_after, entry.lead_id == lead.pk, entry.created_at),
            "note": entry.note == f"Lead {lead.pk} in {campaign.name}",
            "wallet": (wallet.balance, wallet.low_balance_alerted),
            "keys": keys == {f"email:{lead.email}", f"phone:{lead.phone}"},
            "distribution": (sale.distribution.status, sale.distribution.round, sale.distribution.created_at),
        }

    lead_a, lead_b = LeadFactory(organization=organization), LeadFactory(organization=organization)
    lead_distribute(lead=lead_a, campaign=single, now=now)
    lead_distribute(lead=lead_b, campaign=shared, now=now)
    assert written(single, alone, lead_a) == written(shared, first, lead_b)
    assert LeadDistribution.objects.unscoped().get(lead=lead_a).revenue == Decimal("10.00")
    assert CampaignRoutingState.objects.unscoped().get(campaign=single).last_subscription_id == alone.pk
    with organization_scope(organization):
        assert ledger_sum(alone.buyer) == balance(alone.buyer) == Decimal("90.00")


def test_free_leads_are_sold_without_a_ledger_entry(organization, market):
    campaign, [sub] = market("round_robin", buyers=[{"funds": "0"}], price="0.00")
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert outcome.sold and outcome.revenue == Decimal("0")
    assert LeadSale.objects.unscoped().get(buyer=sub.buyer).wallet_entry is None
    assert not WalletEntry.objects.unscoped().filter(buyer=sub.buyer).exists()
