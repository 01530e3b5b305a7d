"""The supplier ingest API with campaigns: validated against the category, stored, distributed before answering,
the outcome in the response; duplicates and re-deliveries never sell again; test leads are never sold or paid."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.constants import Role
from campaigns.models import CampaignSubmission, LeadSale, Wallet
from campaigns.services.catalog import supplier_api_key_create
from campaigns.services.distribution import TestLeadNotSold, lead_distribute
from leads.models import InboundSubmission, Lead
from tests.factories import CampaignFactory, LeadFactory, OrganizationFactory, SupplierFactory

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/leads/ingest/"


def lead_body(n: int, **extra) -> dict:
    body = {
        "external_id": f"SUP-{n}",
        "first_name": "Asha",
        "last_name": f"Rao {n}",
        "email": f"asha{n}@example.com",
        "phone": f"+91987650{n:04d}",
        "state": "Maharashtra",
        "custom": {"age": 67, "coverage": "full"},
    }
    body.update(extra)
    return body


@pytest.fixture
def ingest_client(key_api_client, organization):
    return key_api_client(organization, scopes=("ingest",))


def balance(buyer) -> Decimal:
    return Wallet.objects.unscoped().get(buyer=buyer).balance


def test_a_lead_posted_to_a_campaign_is_sold_before_the_answer(organization, market, ingest_client):
    campaign, subs = market("round_robin", buyers=[{}, {}])
    response = ingest_client.post(INGEST, lead_body(1, campaign=campaign.pk))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "accepted" and body["campaign"] == campaign.pk
    sale = LeadSale.objects.unscoped().get(lead_id=body["id"])
    assert body["distribution"] == {
        "status": "sold",
        "sales": [{"buyer": sale.buyer_id, "price": "10.00"}],
        "revenue": "10.00",
        "reasons": {str(subs[1].buyer_id): "not_chosen"},
        "replayed": False,
    }
    assert balance(sale.buyer) == Decimal("990.00")
    lead = Lead.objects.unscoped().get(pk=body["id"])
    assert "campaign" not in lead.custom  # the routing key is not a custom field
    assert lead.custom == {"age": 67, "coverage": "full"}
    row = CampaignSubmission.objects.unscoped().get(submission_id=body["submission_id"])
    assert (row.outcome, row.lead_id, row.campaign_id, row.supplier_id) == ("accepted", lead.pk, campaign.pk, None)


def test_an_unsold_lead_reports_each_buyers_reason(organization, market, ingest_client):
    campaign, subs = market("waterfall", buyers=[{"daily_cap": 0}, {"funds": "0"}])
    body = ingest_client.post(INGEST, lead_body(2, campaign=str(campaign.pk))).json()
    assert body["distribution"]["status"] == "unsold" and body["distribution"]["sales"] == []
    assert body["distribution"]["reasons"] == {
        str(subs[0].buyer_id): "capped",
        str(subs[1].buyer_id): "insufficient_funds",
    }


def test_custom_fields_are_checked_against_the_campaigns_category(organization, market, ingest_client):
    campaign, _ = market("round_robin", buyers=[{}])  # the factory's category: age (number, required), coverage
    response = ingest_client.post(INGEST, lead_body(3, campaign=campaign.pk, custom={"coverage": "gold"}))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any("age" in message for message in errors["custom"]), errors
    assert any("gold" in message for message in errors["custom.coverage"]), errors
    submission = InboundSubmission.objects.unscoped().get(pk=response.json()["submission_id"])
    assert submission.status == "rejected" and submission.context["campaign_id"] == campaign.pk
    assert CampaignSubmission.objects.unscoped().get(submission=submission).outcome == "rejected"
    assert not LeadSale.objects.unscoped().exists()
    # The same fields without a campaign are free-form, as before.
    assert ingest_client.post(INGEST, lead_body(4, custom={"coverage": "gold"})).status_code == 201


@pytest.mark.parametrize(
    ("campaign", "message"),
    [("nope", "a number"), ("999999", "no campaign"), ("theirs", "no campaign")],
)
def test_an_unknown_campaign_is_a_field_error(organization, ingest_client, campaign, message):
    if campaign == "theirs":
        campaign = CampaignFactory(organization=OrganizationFactory()).pk
    response = ingest_client.post(INGEST, lead_body(5, campaign=campaign))
    assert response.status_code == 400
    assert message in response.json()["errors"]["campaign"][0].lower()
    assert not Lead.objects.unscoped().exists()


def test_a_duplicate_and_a_redelivery_never_sell_again(organization, market, ingest_client):
    campaign, subs = market("broadcast", buyers=[{}, {}])
    first = ingest_client.post(INGEST, lead_body(6, campaign=campaign.pk), HTTP_IDEMPOTENCY_KEY="order-6").json()
    assert first["distribution"]["status"] == "sold" and len(first["distribution"]["sales"]) == 2

    # The same request again (its Idempotency-Key): the same answer, the stored outcome.
    again = ingest_client.post(INGEST, lead_body(6, campaign=campaign.pk), HTTP_IDEMPOTENCY_KEY="order-6")
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert again.json()["distribution"]["sales"] == first["distribution"]["sales"]
    assert again.json()["distribution"]["replayed"] is True
    # The same external id again: a re-delivery, answered with what happened to the lead.
    redelivered = ingest_client.post(INGEST, lead_body(6, campaign=campaign.pk)).json()
    assert (redelivered["status"], redelivered["id"]) == ("duplicate", first["id"])
    assert redelivered["distribution"]["sales"] == first["distribution"]["sales"]
    # Another submission for the same person: a duplicate lead, never sold.
    same_person = lead_body(7, campaign=campaign.pk, email="asha6@example.com")
    duplicate = ingest_client.post(INGEST, same_person).json()
    assert duplicate["status"] == "duplicate" and duplicate["duplicate_of"] == first["id"]
    assert duplicate["distribution"]["replayed"] is True

    assert LeadSale.objects.unscoped().count() == 2
    assert [balance(sub.buyer) for sub in subs] == [Decimal("990.00"), Decimal("990.00")]
    outcomes = CampaignSubmission.objects.unscoped().order_by("id").values_list("outcome", flat=True)
    assert list(outcomes) == ["accepted", "duplicate", "duplicate"]  # the Idempotency-Key replay is the first row


def test_test_leads_are_never_distributed_or_billed(organization, market, ingest_client):
    campaign, subs = market("round_robin", buyers=[{}])
    supplier = SupplierFactory(organization=organization, campaigns=[campaign])
    _, raw_key = supplier_api_key_create(supplier=supplier)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    response = client.post(INGEST, lead_body(8, tags=["test-lead"]))
    assert response.status_code == 201
    assert response.json()["distribution"] == {"status": "skipped", "reason": "test_lead"}
    assert not LeadSale.objects.unscoped().exists() and balance(subs[0].buyer) == Decimal("1000.00")
    row = CampaignSubmission.objects.unscoped().get()
    assert (row.is_test, row.payout) == (True, Decimal("0"))
    # No other path sells one either.
    with pytest.raises(TestLeadNotSold):
        lead_distribute(lead=Lead.objects.unscoped().get(pk=response.json()["id"]), campaign=campaign)
    with pytest.raises(TestLeadNotSold):
        lead_distribute(lead=LeadFactory(organization=organization, tags=["test-lead"]), campaign=campaign)


def test_a_supplier_key_posts_only_to_its_campaigns_and_earns_its_payout(organization, market):
    campaign, _ = market("round_robin", buyers=[{}])
    other, _ = market("round_robin", buyers=[{}])
    supplier = SupplierFactory(organization=organization, campaigns=[campaign], payout_per_lead=Decimal("3.50"))
    _, raw_key = supplier_api_key_create(supplier=supplier, name="Leads Inc CRM")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)

    # Its only campaign needs no naming.
    accepted = client.post(INGEST, lead_body(10))
    assert accepted.status_code == 201 and accepted.json()["campaign"] == campaign.pk
    assert accepted.json()["distribution"]["status"] == "sold"
    refused = client.post(INGEST, lead_body(11, campaign=other.pk))
    assert refused.status_code == 400 and "cannot post" in refused.json()["errors"]["campaign"][0]
    duplicate = client.post(INGEST, lead_body(12, email="asha10@example.com"))
    assert duplicate.status_code == 200
    rows = CampaignSubmission.objects.unscoped().filter(supplier=supplier).order_by("id")
    assert [(r.outcome, r.payout) for r in rows] == [("accepted", Decimal("3.50")), ("duplicate", Decimal("0"))]

    # The key reads its own statistics, and no other supplier's.
    SupplierFactory(organization=organization, campaigns=[other])
    stats = client.get("/api/v1/supplier-stats/")
    assert stats.status_code == 200, stats.content
    [row] = stats.json()["results"]
    assert row["id"] == supplier.pk
    assert row["statistics"] == {
        "submitted": 2,
        "accepted": 1,
        "duplicates": 1,
        "rejected": 0,
        "failed": 0,
        "tests": 0,
        "sold": 1,
        "acceptance_rate": 0.5,
        "payout": "3.50",
    }
    # It cannot read the CRM.
    assert client.get("/api/v1/leads/").status_code == 403

    # A supplier with several campaigns names one; a paused supplier posts nothing.
    supplier.campaigns.add(other)
    from campaigns.intake import suppliers_forget

    suppliers_forget()
    assert "several" in client.post(INGEST, lead_body(13)).json()["errors"]["campaign"][0]
    supplier.is_active = False
    supplier.save()
    assert client.post(INGEST, lead_body(14, campaign=campaign.pk)).status_code == 403


def test_members_see_every_suppliers_statistics(organization, user_api_client, market):
    campaign, _ = market("round_robin", buyers=[{}])
    suppliers = [SupplierFactory(organization=organization, campaigns=[campaign]) for _ in range(2)]
    client = user_api_client(Role.MANAGER)
    response = client.get("/api/v1/supplier-stats/", {"since": "2020-01-01T00:00:00Z"})
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {s.pk for s in suppliers}
    assert client.get("/api/v1/supplier-stats/", {"since": "yesterday"}).status_code == 400
    assert user_api_client(Role.AGENT).get("/api/v1/supplier-stats/").status_code == 403


@pytest.mark.django_db(transaction=True)  # real commits: the wake-ups follow them
def test_the_worker_is_woken_for_a_new_lead_once_its_distribution_has_committed(
    organization, market, ingest_client, monkeypatch
):
    from leads.services import outbox

    campaign, _ = market("round_robin", buyers=[{}])
    woken = []

    def enqueue(organization_id, topic):
        # What the worker would find at that moment: the lead's handlers ran beside its distribution before.
        woken.append((topic, LeadSale.objects.unscoped().filter(lead__external_id="SUP-40").exists()))

    monkeypatch.setattr(outbox, "_enqueue", enqueue)
    monkeypatch.setattr(outbox, "redis_client", lambda: None)  # no burst flag: every wake-up reaches _enqueue
    response = ingest_client.post(INGEST, lead_body(40, campaign=campaign.pk))
    assert response.status_code == 201, response.content
    assert response.json()["distribution"]["status"] == "sold"
    assert ("lead.created", True) in woken
    assert all(sold for _, sold in woken)
