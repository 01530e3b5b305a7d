from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.constants import Role
from accounts.models import AuditEvent
from campaigns.models import Buyer, Wallet, WalletEntry
from campaigns.services.distribution import lead_distribute
from tests.factories import (
    BuyerFactory,
    BuyerSubscriptionFactory,
    CampaignFactory,
    CategoryFactory,
    LeadDistributionFactory,
    LeadFactory,
    OrganizationFactory,
    SupplierFactory,
    WalletEntryFactory,
)

pytestmark = pytest.mark.django_db


def test_set_up_a_market_through_the_api(user_api_client, organization):
    client = user_api_client(Role.MANAGER)
    category = client.post(
        "/api/v1/categories/",
        {"name": "Medicare", "slug": "medicare", "fields": [{"name": "age", "label": "Age", "type": "number"}]},
    )
    assert category.status_code == 201, category.content
    campaign = client.post(
        "/api/v1/campaigns/",
        {
            "category": category.json()["id"],
            "name": "Medicare CA",
            "price_per_lead": "12.50",
            "distribution_logic": "weighted",
        },
    )
    assert campaign.status_code == 201, campaign.content
    assert campaign.json()["status"] == "active" and campaign.json()["cost_per_lead"] is None
    buyer = client.post(
        "/api/v1/buyers/",
        {"name": "Senior Plans", "email": "ops@seniorplans.example", "timezone": "America/Los_Angeles"},
    )
    assert buyer.status_code == 201, buyer.content
    assert buyer.json()["balance"] == "0.00"
    assert Wallet.objects.unscoped().filter(buyer_id=buyer.json()["id"]).exists()
    subscription = client.post(
        "/api/v1/buyer-subscriptions/",
        {
            "buyer": buyer.json()["id"],
            "campaign": campaign.json()["id"],
            "daily_cap": 10,
            "weight": 4,
            "field_filters": [{"field": "custom.age", "operator": "gte", "value": "65"}],
            "schedule_days": [0, 1, 2, 3, 4],
            "schedule_start": "09:00",
            "schedule_end": "17:00",
        },
    )
    assert subscription.status_code == 201, subscription.content
    supplier = client.post(
        "/api/v1/suppliers/", {"name": "Leads Inc", "payout_per_lead": "4.00", "campaigns": [campaign.json()["id"]]}
    )
    assert supplier.status_code == 201, supplier.content
    assert supplier.json()["campaigns"] == [campaign.json()["id"]]
    assert set(AuditEvent.objects.unscoped().filter(organization=organization).values_list("action", flat=True)) >= {
        "category.created",
        "campaign.created",
        "buyer.created",
        "buyersubscription.created",
        "supplier.created",
    }
    paused = client.post(f"/api/v1/campaigns/{campaign.json()['id']}/pause/", {"reason": "manual"})
    assert (paused.status_code, paused.json()["status"], paused.json()["pause_reason"]) == (200, "paused", "manual")
    resumed = client.post(f"/api/v1/campaigns/{campaign.json()['id']}/resume/")
    assert resumed.json()["status"] == "active"


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/categories/", {"name": "X", "slug": "x", "fields": [{"name": "a", "type": "nope"}]}, "fields"),
        ("/api/v1/buyer-subscriptions/", {"weight": 11}, "weight"),
        ("/api/v1/buyer-subscriptions/", {"field_filters": [{"field": "age", "operator": "like"}]}, "field_filters"),
        ("/api/v1/buyer-subscriptions/", {"schedule_days": [7]}, "schedule_days"),
    ],
)
def test_invalid_input_is_refused(user_api_client, organization, url, body, field):
    subscription_base = {
        "buyer": BuyerFactory(organization=organization).pk,
        "campaign": CampaignFactory(organization=organization).pk,
    }
    response = user_api_client(Role.MANAGER).post(
        url, {**subscription_base, **body} if "subscriptions" in url else body
    )
    assert response.status_code == 400
    assert any(key.startswith(field) for key in response.json()["errors"]), response.json()


def test_foreign_keys_to_another_organization_are_refused(user_api_client, organization):
    theirs = OrganizationFactory()
    their_buyer, their_campaign = BuyerFactory(organization=theirs), CampaignFactory(organization=theirs)
    client = user_api_client(Role.MANAGER)
    response = client.post(
        "/api/v1/buyer-subscriptions/",
        {"buyer": their_buyer.pk, "campaign": CampaignFactory(organization=organization).pk},
    )
    assert response.status_code == 400 and "buyer" in response.json()["errors"]
    response = client.post("/api/v1/suppliers/", {"name": "S", "campaigns": [their_campaign.pk]})
    assert response.status_code == 400 and "campaigns" in response.json()["errors"]
    response = client.post(
        "/api/v1/campaigns/",
        {"category": CategoryFactory(organization=theirs).pk, "name": "C", "price_per_lead": "1"},
    )
    assert response.status_code == 400 and "category" in response.json()["errors"]


def test_wallet_credit_needs_a_manager_and_writes_the_ledger(user_api_client, organization):
    buyer = BuyerFactory(organization=organization)
    url = f"/api/v1/buyers/{buyer.pk}/credit/"
    assert user_api_client(Role.AGENT).post(url, {"amount": "50"}).status_code == 403
    manager = user_api_client(Role.MANAGER)
    response = manager.post(url, {"amount": "50.00", "note": "Bank transfer 118"})
    assert response.status_code == 201, response.content
    assert (response.json()["kind"], response.json()["balance_after"]) == ("credit", "50.00")
    assert manager.post(url, {"amount": "-5"}).status_code == 400
    assert manager.post(f"/api/v1/buyers/{buyer.pk}/adjust/", {"amount": "-5", "note": "x"}).status_code == 403
    admin = user_api_client(Role.ADMIN)
    assert admin.post(f"/api/v1/buyers/{buyer.pk}/adjust/", {"amount": "-5", "note": "Fee"}).status_code == 201
    assert admin.post(f"/api/v1/buyers/{buyer.pk}/adjust/", {"amount": "-500", "note": "Too much"}).status_code == 400
    assert manager.get(f"/api/v1/buyers/{buyer.pk}/").json()["balance"] == "45.00"
    ledger = manager.get("/api/v1/wallet-entries/", {"buyer": buyer.pk}).json()["results"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("adjustment", "-5.00"), ("credit", "50.00")]
    assert WalletEntry.objects.unscoped().filter(buyer=buyer).count() == 2


def test_a_buyer_with_sales_cannot_be_deleted(user_api_client, organization):
    subscription = BuyerSubscriptionFactory(organization=organization)
    client = user_api_client(Role.MANAGER)
    client.post(f"/api/v1/buyers/{subscription.buyer_id}/credit/", {"amount": "100"})
    lead_distribute(lead=LeadFactory(organization=organization), campaign=subscription.campaign)
    response = client.delete(f"/api/v1/buyers/{subscription.buyer_id}/")
    assert response.status_code == 400
    assert Buyer.objects.unscoped().filter(pk=subscription.buyer_id).exists()
    spare = BuyerFactory(organization=organization)
    assert client.delete(f"/api/v1/buyers/{spare.pk}/").status_code == 204


def test_lead_outcomes_and_campaign_figures(user_api_client, organization):
    subscription = BuyerSubscriptionFactory(organization=organization, daily_cap=1)
    campaign = subscription.campaign
    client = user_api_client(Role.MANAGER)
    client.post(f"/api/v1/buyers/{subscription.buyer_id}/credit/", {"amount": "100"})
    first, second = LeadFactory(organization=organization), LeadFactory(organization=organization)
    lead_distribute(lead=first, campaign=campaign)
    lead_distribute(lead=second, campaign=campaign)
    sold = client.get("/api/v1/lead-distributions/", {"lead": first.pk}).json()["results"]
    assert len(sold) == 1 and sold[0]["status"] == "sold"
    assert [(s["buyer"], s["price"]) for s in sold[0]["sales"]] == [(subscription.buyer_id, "10.00")]
    unsold = client.get("/api/v1/lead-distributions/", {"lead": second.pk}).json()["results"][0]
    assert unsold["status"] == "unsold" and unsold["reasons"] == {str(subscription.buyer_id): "capped"}
    figures = client.get(f"/api/v1/campaigns/{campaign.pk}/figures/").json()
    assert (figures["leads"], figures["sold"], figures["unsold"], figures["revenue"]) == (2, 1, 1, "10.00")
    client.patch(f"/api/v1/campaigns/{campaign.pk}/", {"ad_spend": "30.00"})
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/").json()["cost_per_lead"] == "15.00"
    assert client.get("/api/v1/campaigns/").json()["results"][0]["cost_per_lead"] == "15.00"
    assert Decimal(client.get(f"/api/v1/buyers/{subscription.buyer_id}/").json()["balance"]) == Decimal("90")


def test_status_is_changed_only_by_pause_and_resume(user_api_client, organization):
    campaign = CampaignFactory(organization=organization)
    response = user_api_client(Role.MANAGER).patch(f"/api/v1/campaigns/{campaign.pk}/", {"status": "paused"})
    campaign.refresh_from_db()
    assert response.status_code == 200 and campaign.status == "active"  # read-only field: ignored


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/api/v1/campaigns/", lambda org: BuyerSubscriptionFactory(organization=org).campaign),
        ("/api/v1/buyers/", lambda org: BuyerFactory(organization=org)),
        ("/api/v1/buyer-subscriptions/", lambda org: BuyerSubscriptionFactory(organization=org)),
        (
            "/api/v1/suppliers/",
            lambda org: SupplierFactory(organization=org, campaigns=[CampaignFactory(organization=org)]),
        ),
        ("/api/v1/lead-distributions/", lambda org: LeadDistributionFactory(organization=org)),
        ("/api/v1/wallet-entries/", lambda org: WalletEntryFactory(organization=org)),
        ("/api/v1/categories/", lambda org: CategoryFactory(organization=org)),
    ],
)
def test_list_queries_do_not_grow_with_rows(user_api_client, organization, django_assert_max_num_queries, url, make):
    client = user_api_client(Role.MANAGER)
    make(organization)
    with CaptureQueriesContext(connection) as one_row:
        assert client.get(url).status_code == 200
    for _ in range(5):
        make(organization)
    with django_assert_max_num_queries(len(one_row)):
        response = client.get(url)
    assert response.json()["count"] == 6
