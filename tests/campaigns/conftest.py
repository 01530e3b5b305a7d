from __future__ import annotations

from decimal import Decimal

import pytest

from campaigns.services.wallets import wallet_credit
from tests.factories import BuyerFactory, BuyerSubscriptionFactory, CampaignFactory


@pytest.fixture
def market(organization):
    """Build a campaign with subscribed buyers: ``market(logic, buyers=[{...subscription fields, "funds": …}])``."""

    def build(logic="round_robin", buyers=({},), price="10.00", **campaign_fields):
        campaign = CampaignFactory(
            organization=organization, distribution_logic=logic, price_per_lead=Decimal(price), **campaign_fields
        )
        subscriptions = []
        for spec in buyers:
            spec = dict(spec)
            funds = spec.pop("funds", "1000.00")
            buyer_fields = {name: spec.pop(name) for name in ("credit_limit", "timezone", "status") if name in spec}
            buyer = BuyerFactory(organization=organization, **buyer_fields)
            if Decimal(funds) > 0:
                wallet_credit(buyer=buyer, amount=funds)
            subscriptions.append(
                BuyerSubscriptionFactory(organization=organization, buyer=buyer, campaign=campaign, **spec)
            )
        return campaign, subscriptions

    return build
