"""The charge interface's offline provider: credits the wallet once per idempotency key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.charging import ChargeStatus, wallet_recharge_charge
from campaigns.models import Wallet, WalletEntry
from tests.factories import BuyerFactory

pytestmark = pytest.mark.django_db


def test_offline_recharge_credits_the_wallet_once_per_key():
    buyer = BuyerFactory()
    first = wallet_recharge_charge(buyer=buyer, amount=Decimal("50.00"), idempotency_key="recharge-1")
    again = wallet_recharge_charge(buyer=buyer, amount=Decimal("50.00"), idempotency_key="recharge-1")
    wallet_recharge_charge(buyer=buyer, amount=Decimal("25.00"), idempotency_key="recharge-2")

    assert first.status == ChargeStatus.SUCCEEDED and first.reference == again.reference == "offline:recharge-1"
    assert Wallet.objects.unscoped().get(buyer=buyer).balance == Decimal("75.00")
    assert WalletEntry.objects.unscoped().filter(buyer=buyer).count() == 2
