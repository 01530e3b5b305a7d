"""Money around the sale: spending limits in the engine, low-balance alerts once per crossing, and auto-recharge
through the billing charge interface (the offline provider), idempotent, with failures reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from accounts.constants import Role
from billing import charging
from billing.charging import ChargeResult, ChargeStatus
from campaigns.models import AutoRecharge, Buyer, Wallet, WalletEntry
from campaigns.selectors import ledger_sum
from campaigns.services.catalog import buyer_save
from campaigns.services.distribution import lead_distribute
from campaigns.services.recharge import wallet_auto_recharge
from campaigns.services.wallets import wallet_credit, wallet_refund
from leadflow.tenancy.context import organization_scope
from tests.factories import LeadFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def balance(buyer) -> Decimal:
    return Wallet.objects.unscoped().get(buyer=buyer).balance


def set_buyer(buyer, **fields) -> Buyer:
    for name, value in fields.items():
        setattr(buyer, name, value)
    buyer.save()
    return buyer


def test_spending_limits_turn_a_buyer_away_in_the_engine(organization, market):
    campaign, [capped, spare] = market("waterfall", buyers=[{"priority": 1}, {"priority": 2}])
    set_buyer(capped.buyer, weekly_spend_limit=Decimal("25.00"), monthly_spend_limit=Decimal("100.00"))

    def sell(now):
        return lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign, now=now)

    first, second, third = (sell(MONDAY_NOON + timedelta(hours=h)) for h in range(3))
    assert [o.sales[0].buyer_id for o in (first, second)] == [capped.buyer_id, capped.buyer_id]
    # 20 spent this week: a third lead at 10 would pass the 25 limit, so it falls to the next buyer.
    assert third.sales[0].buyer_id == spare.buyer_id
    assert third.reasons[str(capped.buyer_id)] == "spending_limit"
    # A refund (an approved return) gives the room back; the next week starts afresh.
    wallet_refund(buyer=capped.buyer, amount="10.00", lead=LeadFactory(organization=organization))
    assert sell(MONDAY_NOON + timedelta(hours=4)).sales[0].buyer_id == capped.buyer_id
    next_week = sell(MONDAY_NOON + timedelta(days=7))
    assert next_week.sales[0].buyer_id == capped.buyer_id


def test_a_monthly_limit_of_zero_stops_all_buying(organization, market):
    campaign, [sub] = market("round_robin", buyers=[{}])
    set_buyer(sub.buyer, monthly_spend_limit=Decimal("0"))
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign, now=MONDAY_NOON)
    assert not outcome.sold and outcome.reasons == {str(sub.buyer_id): "spending_limit"}


def test_low_balance_alerts_once_per_crossing(organization, market, django_capture_on_commit_callbacks):
    admin = UserFactory(email="admin.money@example.com")
    MembershipFactory(organization=organization, user=admin, role=Role.ADMIN)
    MembershipFactory(organization=organization, user=UserFactory(email="agent.money@example.com"), role=Role.AGENT)
    campaign, [sub] = market("round_robin", buyers=[{"funds": "35.00"}])
    set_buyer(sub.buyer, low_balance_threshold=Decimal("20.00"), email="billing@buyer.example")

    def sell():
        with django_capture_on_commit_callbacks(execute=True):
            return lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)

    sell()  # 25 left: above the threshold
    assert mail.outbox == []
    sell()  # 15 left: crossed
    [alert] = mail.outbox
    assert set(alert.to) == {"admin.money@example.com", "billing@buyer.example"}
    assert "15.00" in alert.subject and sub.buyer.name in alert.subject
    sell()  # 5 left: still below, no second alert
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        wallet_credit(buyer=sub.buyer, amount="50.00")  # 55: above again, the alert re-arms
    assert not Wallet.objects.unscoped().get(buyer=sub.buyer).low_balance_alerted
    sell(), sell()  # 45, 35
    assert len(mail.outbox) == 1
    sell(), sell()  # 25, 15: crossed again
    assert len(mail.outbox) == 2


def test_auto_recharge_tops_up_once_through_the_offline_provider(
    organization, market, django_capture_on_commit_callbacks
):
    campaign, [sub] = market("round_robin", buyers=[{"funds": "40.00"}])
    buyer = set_buyer(
        sub.buyer,
        auto_recharge_enabled=True,
        auto_recharge_threshold=Decimal("30.00"),
        auto_recharge_amount=Decimal("100.00"),
    )
    for _ in range(2):  # 40 → 30 (not below), 30 → 20: crossed
        with django_capture_on_commit_callbacks(execute=True):
            lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    assert balance(buyer) == Decimal("120.00")
    recharge = AutoRecharge.objects.unscoped().get(buyer=buyer)
    assert (recharge.status, recharge.provider, recharge.amount) == ("succeeded", "offline", Decimal("100.00"))
    assert recharge.reference == f"offline:{recharge.idempotency_key}"
    credit = WalletEntry.objects.unscoped().get(buyer=buyer, kind="credit", external_reference=recharge.reference)
    assert credit.amount == Decimal("100.00")

    # The task again with the same key (a redelivery) charges nothing more.
    assert wallet_auto_recharge(buyer_id=buyer.pk, idempotency_key=recharge.idempotency_key).pk == recharge.pk
    with organization_scope(organization):
        assert balance(buyer) == Decimal("120.00") == ledger_sum(buyer)
    assert AutoRecharge.objects.unscoped().count() == 1


def test_turning_auto_recharge_on_below_the_threshold_recharges_now(
    organization, market, django_capture_on_commit_callbacks
):
    _, [sub] = market("round_robin", buyers=[{"funds": "5.00"}])
    with django_capture_on_commit_callbacks(execute=True):
        buyer_save(
            buyer=Buyer.objects.unscoped().get(pk=sub.buyer_id),
            data={
                "auto_recharge_enabled": True,
                "auto_recharge_threshold": Decimal("10.00"),
                "auto_recharge_amount": Decimal("50.00"),
            },
        )
    assert balance(sub.buyer) == Decimal("55.00")


class DecliningProvider:
    """A card processor that declines every charge (stands in for Razorpay/Stripe refusing a saved card)."""

    name = "declining"

    def recharge_wallet(self, *, buyer, amount, idempotency_key, description):
        return ChargeResult(ChargeStatus.FAILED, self.name, error="Your card was declined.")


def test_a_failed_recharge_is_reported_and_auto_recharge_stops_after_three(
    organization, market, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(charging, "charge_provider_for", lambda organization: DecliningProvider())
    admin = UserFactory(email="owner.money@example.com")
    MembershipFactory(organization=organization, user=admin, role=Role.OWNER)
    campaign, [sub] = market("round_robin", buyers=[{"funds": "15.00"}])
    buyer = set_buyer(
        sub.buyer,
        email="ap@buyer.example",
        auto_recharge_enabled=True,
        auto_recharge_threshold=Decimal("10.00"),
        auto_recharge_amount=Decimal("100.00"),
    )
    for attempt in range(1, 4):
        with django_capture_on_commit_callbacks(execute=True):
            lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)  # 15 → 5: crossed
        assert AutoRecharge.objects.unscoped().filter(status="failed").count() == attempt
        assert "declined" in mail.outbox[-1].body and set(mail.outbox[-1].to) == {admin.email, "ap@buyer.example"}
        with django_capture_on_commit_callbacks(execute=True):
            wallet_credit(buyer=buyer, amount="10.00")  # back to 15 by hand
    buyer.refresh_from_db()
    assert (buyer.auto_recharge_enabled, buyer.auto_recharge_failures) == (False, 3)
    assert "now off" in mail.outbox[-1].body
    assert balance(buyer) == Decimal("15.00")  # nothing was credited by the declined charges
