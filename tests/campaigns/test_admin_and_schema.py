from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from campaigns.schema import category_json_schema
from campaigns.services.distribution import lead_distribute
from tests.factories import BuyerSubscriptionFactory, LeadFactory, SupplierFactory

pytestmark = pytest.mark.django_db

MODELS = [
    "category",
    "campaign",
    "campaignroutingstate",
    "buyer",
    "buyersubscription",
    "supplier",
    "wallet",
    "walletentry",
    "leaddistribution",
    "leadsale",
    "buyercontact",
]


@pytest.fixture
def sold_lead(organization):
    from campaigns.services.wallets import wallet_credit

    subscription = BuyerSubscriptionFactory(organization=organization)
    wallet_credit(buyer=subscription.buyer, amount="50")
    SupplierFactory(organization=organization, campaigns=[subscription.campaign])
    lead = LeadFactory(organization=organization)
    lead_distribute(lead=lead, campaign=subscription.campaign)
    return lead


@pytest.mark.parametrize("model", MODELS)
def test_admin_pages_render(admin_client, sold_lead, model):
    from django.apps import apps

    assert admin_client.get(f"/admin/campaigns/{model}/").status_code == 200
    row = apps.get_model("campaigns", model)._default_manager.unscoped().first()
    assert admin_client.get(f"/admin/campaigns/{model}/{row.pk}/change/").status_code == 200


def test_admin_cannot_edit_the_ledger(admin_client, sold_lead):
    from campaigns.models import WalletEntry

    entry = WalletEntry.objects.unscoped().first()
    response = admin_client.post(f"/admin/campaigns/walletentry/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert WalletEntry.objects.unscoped().filter(pk=entry.pk).exists()


def test_category_fields_become_a_json_schema_for_custom_fields():
    schema = category_json_schema(
        [
            {"name": "age", "type": "number", "required": True},
            {"name": "coverage", "type": "choice", "choices": ["basic", "full"]},
            {"name": "owner", "type": "boolean"},
        ]
    )
    validator = Draft202012Validator(schema)
    assert not list(validator.iter_errors({"age": 70, "coverage": "full", "owner": True, "extra": "kept"}))
    errors = {error.message for error in validator.iter_errors({"coverage": "gold", "owner": "yes"})}
    assert len(errors) == 3


NEW_MODELS = [
    ("campaigns", "supplierapikey"),
    ("campaigns", "campaignsubmission"),
    ("campaigns", "deliverymethod"),
    ("campaigns", "saledelivery"),
    ("campaigns", "leadreturn"),
    ("campaigns", "buyerportaluser"),
    ("campaigns", "buyerinvite"),
    ("campaigns", "autorecharge"),
    ("messaging", "usagerecord"),
    ("messaging", "usagepricing"),
]


@pytest.mark.parametrize(("app", "model"), NEW_MODELS)
def test_admin_pages_of_deliveries_returns_and_usage_render(admin_client, organization, app, model):
    from decimal import Decimal

    from django.apps import apps

    from campaigns.models import AutoRecharge, SupplierApiKey
    from messaging.models import UsagePricing
    from tests.factories import TENANT_FACTORIES, BuyerFactory, make_api_key

    model_class = apps.get_model(app, model)
    if model_class is SupplierApiKey:
        row = SupplierApiKey.objects.unscoped().create(
            organization=organization,
            supplier=SupplierFactory(organization=organization),
            api_key=make_api_key(organization, scopes=["ingest"])[0],
        )
    elif model_class is AutoRecharge:
        row = AutoRecharge.objects.unscoped().create(
            organization=organization,
            buyer=BuyerFactory(organization=organization),
            idempotency_key="auto-recharge:admin",
            amount=Decimal("50"),
            balance_before=Decimal("3"),
        )
    elif model_class is UsagePricing:
        row = UsagePricing.objects.unscoped().create(organization=organization, markup_percent=Decimal("15"))
    else:
        row = TENANT_FACTORIES[model_class](organization=organization)
    assert admin_client.get(f"/admin/{app}/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{app}/{model}/{row.pk}/change/").status_code == 200
