"""The campaign pages: what managers see (real figures), forms that show their errors, roles, and another
organization's rows answering 404."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.constants import Role
from campaigns.models import Category, DeliveryMethod, LeadReturn, Supplier, SupplierApiKey, Wallet, WalletEntry
from campaigns.services.catalog import supplier_api_key_create
from campaigns.services.distribution import lead_distribute
from campaigns.services.returns import lead_return_request
from messaging.models import UsagePricing
from tests.conftest import member_of
from tests.factories import (
    BuyerFactory,
    BuyerInviteFactory,
    BuyerPortalUserFactory,
    BuyerSubscriptionFactory,
    CampaignFactory,
    CategoryFactory,
    DeliveryMethodFactory,
    LeadDistributionFactory,
    LeadFactory,
    LeadReturnFactory,
    OrganizationFactory,
    SupplierFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client, organization):
    client.force_login(member_of(organization, Role.MANAGER))
    return client


@pytest.fixture
def admin_client(client, organization):
    client.force_login(member_of(organization, Role.ADMIN))
    return client


def test_every_page_renders_with_real_figures(manager_client, organization, market):
    campaign, [first, _second] = market("round_robin", buyers=[{"daily_cap": 1}, {"daily_cap": 1}])
    for _ in range(3):
        lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    sale = first.buyer.sales.model.objects.unscoped().filter(buyer=first.buyer).first()
    lead_return_request(sale=sale, reason="bad_email")
    supplier = SupplierFactory(organization=organization, campaigns=[campaign])
    pages = {
        "/campaigns/": [campaign.name, "Create campaign"],
        f"/campaigns/{campaign.pk}/": ["Why leads went unsold", "capped", first.buyer.name, "20.00"],
        f"/campaigns/{campaign.pk}/figures/": ['data-testid="figure-leads">3<', 'data-testid="figure-sold">2<'],
        "/campaigns/categories/": [campaign.category.name, "age"],
        f"/campaigns/categories/{campaign.category_id}/": ["Field schema", 'value="coverage"'],
        "/campaigns/buyers/": [first.buyer.name, "990.00"],
        f"/campaigns/buyers/{first.buyer_id}/": ["990.00", "Lead ", campaign.name, "Add a delivery method"],
        f"/campaigns/subscriptions/{first.pk}/": ["Field filters", first.buyer.name],
        "/campaigns/suppliers/": [supplier.name],
        f"/campaigns/suppliers/{supplier.pk}/": [supplier.name, "API keys"],
        "/campaigns/returns/": [first.buyer.name, "Email bounces"],
    }
    for url, expected in pages.items():
        response = manager_client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        for snippet in expected:
            assert snippet in text, (url, snippet)
    assert b'href="/campaigns/"' in manager_client.get("/dashboard/").content  # the navigation entry


def test_agents_cannot_open_the_campaign_pages(client, organization):
    client.force_login(member_of(organization, Role.AGENT))
    assert client.get("/campaigns/").status_code == 403
    assert b'href="/campaigns/"' not in client.get("/dashboard/").content


def test_another_organizations_rows_are_404(manager_client, organization):
    theirs = OrganizationFactory()
    subscription = BuyerSubscriptionFactory(organization=theirs)
    distribution = LeadDistributionFactory(organization=theirs)
    supplier = SupplierFactory(organization=theirs)
    lead_return = LeadReturnFactory(organization=theirs)
    method = DeliveryMethodFactory(organization=theirs)
    invite = BuyerInviteFactory(organization=theirs)
    access = BuyerPortalUserFactory(organization=theirs)
    gets = [
        f"/campaigns/{subscription.campaign_id}/",
        f"/campaigns/{subscription.campaign_id}/figures/",
        f"/campaigns/categories/{subscription.campaign.category_id}/",
        f"/campaigns/buyers/{subscription.buyer_id}/",
        f"/campaigns/subscriptions/{subscription.pk}/",
        f"/campaigns/suppliers/{supplier.pk}/",
    ]
    for url in gets:
        assert manager_client.get(url).status_code == 404, url
    posts = [
        (f"/campaigns/{subscription.campaign_id}/status/", {}),
        (f"/campaigns/{subscription.campaign_id}/redistribute/", {}),
        (f"/campaigns/distributions/{distribution.pk}/redistribute/", {}),
        (f"/campaigns/buyers/{subscription.buyer_id}/credit/", {"amount": "10"}),
        (f"/campaigns/buyers/{subscription.buyer_id}/delivery-methods/", {"kind": "email", "destination": "a@b.co"}),
        (f"/campaigns/buyers/{subscription.buyer_id}/invites/", {}),
        (f"/campaigns/delivery-methods/{method.pk}/", {"action": "delete"}),
        (f"/campaigns/returns/{lead_return.pk}/decide/", {f"r{lead_return.pk}-decision": "approve"}),
        (f"/campaigns/invites/{invite.pk}/revoke/", {}),
        (f"/campaigns/portal-users/{access.pk}/remove/", {}),
    ]
    for url, data in posts:
        assert manager_client.post(url, data).status_code == 404, url
    assert not WalletEntry.objects.unscoped().filter(buyer_id=subscription.buyer_id).exists()
    assert DeliveryMethod.objects.unscoped().filter(pk=method.pk).exists()
    assert LeadReturn.objects.unscoped().get(pk=lead_return.pk).status == "requested"


def test_the_field_schema_editor(manager_client, organization):
    response = manager_client.post(
        "/campaigns/categories/",
        {
            "name": "Medicare",
            "slug": "medicare",
            "fields-TOTAL_FORMS": "3",
            "fields-INITIAL_FORMS": "0",
            "fields-0-name": "age",
            "fields-0-label": "Age",
            "fields-0-type": "number",
            "fields-0-required": "on",
            "fields-1-name": "plan",
            "fields-1-type": "choice",
            "fields-1-choices": "A, B , G",
            "fields-2-name": "",
            "fields-2-type": "text",
        },
    )
    assert response.status_code == 302
    category = Category.objects.unscoped().get(organization=organization, slug="medicare")
    assert category.fields == [
        {"name": "age", "label": "Age", "type": "number", "required": True},
        {"name": "plan", "label": "plan", "type": "choice", "choices": ["A", "B", "G"]},
    ]
    # A choice field without choices, and a name used twice: the page says what is wrong.
    response = manager_client.post(
        f"/campaigns/categories/{category.pk}/",
        {
            "name": "Medicare",
            "slug": "medicare",
            "fields-TOTAL_FORMS": "2",
            "fields-INITIAL_FORMS": "2",
            "fields-0-name": "plan",
            "fields-0-type": "choice",
            "fields-1-name": "plan",
            "fields-1-type": "text",
        },
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "needs a non-empty list of choices" in text and "appears twice" in text
    category.refresh_from_db()
    assert len(category.fields) == 2 and category.fields[0]["name"] == "age"  # nothing half-saved


def test_campaign_and_buyer_forms_show_their_errors(manager_client, organization):
    category = CategoryFactory(organization=organization)
    response = manager_client.post("/campaigns/", {"category": category.pk, "name": "", "price_per_lead": "-1"})
    assert response.status_code == 400
    assert b"This field is required" in response.content and b"greater than or equal to 0" in response.content
    response = manager_client.post(
        "/campaigns/buyers/",
        {
            "name": "Senior Plans",
            "status": "active",
            "timezone": "Asia/Kolkata",
            "credit_limit": "0",
            "auto_recharge_enabled": "on",
        },
    )
    assert response.status_code == 400 and b"needs both a threshold and an amount" in response.content


def test_subscribe_a_buyer_with_caps_filters_and_a_schedule(manager_client, organization):
    campaign, buyer = CampaignFactory(organization=organization), BuyerFactory(organization=organization)
    response = manager_client.post(
        "/campaigns/subscriptions/",
        {
            "from": "campaign",
            "buyer": buyer.pk,
            "campaign": campaign.pk,
            "is_active": "on",
            "daily_cap": "20",
            "states": "IN-MH, IN-KA",
            "schedule_days": ["0", "1", "2", "3", "4"],
            "schedule_start": "09:00",
            "schedule_end": "18:00",
            "priority": "1",
            "weight": "3",
            "filters-TOTAL_FORMS": "2",
            "filters-INITIAL_FORMS": "0",
            "filters-0-field": "custom.age",
            "filters-0-operator": "gte",
            "filters-0-value": "65",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription = buyer.subscriptions.model.objects.unscoped().get(buyer=buyer)
    assert subscription.field_filters == [{"field": "custom.age", "operator": "gte", "value": "65"}]
    assert (subscription.daily_cap, subscription.states, subscription.schedule_days) == (
        20,
        ["IN-MH", "IN-KA"],
        [0, 1, 2, 3, 4],
    )
    # An unknown operator is shown, not stored.
    response = manager_client.post(
        f"/campaigns/subscriptions/{subscription.pk}/",
        {
            "buyer": buyer.pk,
            "campaign": campaign.pk,
            "priority": "1",
            "weight": "11",
            "filters-TOTAL_FORMS": "1",
            "filters-INITIAL_FORMS": "0",
            "filters-0-field": "custom.age",
            "filters-0-operator": "",
            "filters-0-value": "65",
        },
    )
    assert response.status_code == 400
    assert b"less than or equal to 10" in response.content and b"the operator must be one of" in response.content


def test_wallet_and_delivery_methods_on_the_buyer_page(admin_client, organization, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    buyer = BuyerFactory(organization=organization)
    Wallet.objects.unscoped().create(organization=organization, buyer=buyer)
    assert (
        admin_client.post(f"/campaigns/buyers/{buyer.pk}/credit/", {"amount": "120.50", "note": "NEFT"}).status_code
        == 302
    )
    assert (
        admin_client.post(f"/campaigns/buyers/{buyer.pk}/adjust/", {"amount": "-500", "note": "x"}).status_code == 400
    )
    assert (
        admin_client.post(f"/campaigns/buyers/{buyer.pk}/adjust/", {"amount": "-0.50", "note": "Fee"}).status_code
        == 302
    )
    assert Wallet.objects.unscoped().get(buyer=buyer).balance == Decimal("120.00")

    response = admin_client.post(
        f"/campaigns/buyers/{buyer.pk}/delivery-methods/", {"kind": "webhook", "url": "http://127.0.0.1/hook"}
    )
    assert response.status_code == 400 and b"https" in response.content
    response = admin_client.post(
        f"/campaigns/buyers/{buyer.pk}/delivery-methods/", {"kind": "webhook", "url": "https://crm.buyer.example/in"}
    )
    assert response.status_code == 201
    method = DeliveryMethod.objects.unscoped().get(buyer=buyer)
    assert method.webhook_endpoint.secret.encode() in response.content  # shown once…
    assert method.webhook_endpoint.secret.encode() not in admin_client.get(f"/campaigns/buyers/{buyer.pk}/").content
    response = admin_client.post(
        f"/campaigns/buyers/{buyer.pk}/delivery-methods/", {"kind": "sms", "destination": "12"}
    )
    assert response.status_code == 400 and b"phone" in response.content.lower()


def test_supplier_keys_are_shown_once_and_revocable(admin_client, organization):
    theirs = SupplierFactory(organization=OrganizationFactory())
    supplier_api_key_create(supplier=theirs)
    their_link = SupplierApiKey.objects.unscoped().get(supplier=theirs)
    assert admin_client.post(f"/campaigns/supplier-keys/{their_link.pk}/revoke/").status_code == 404
    assert admin_client.post(f"/campaigns/suppliers/{theirs.pk}/keys/", {"name": "x"}).status_code == 404
    supplier = SupplierFactory(organization=organization)
    response = admin_client.post(f"/campaigns/suppliers/{supplier.pk}/keys/", {"name": "Their CRM"})
    assert response.status_code == 201
    link = SupplierApiKey.objects.unscoped().get(supplier=supplier)
    assert b'id="supplier-key"' in response.content and link.api_key.scopes == ["ingest"]
    assert b'id="supplier-key"' not in admin_client.get(f"/campaigns/suppliers/{supplier.pk}/").content
    assert admin_client.post(f"/campaigns/supplier-keys/{link.pk}/revoke/").status_code == 302
    link.api_key.refresh_from_db()
    assert link.api_key.revoked_at is not None
    their_link.api_key.refresh_from_db()
    assert their_link.api_key.revoked_at is None
    assert Supplier.objects.unscoped().filter(pk=supplier.pk).exists()


def test_the_returns_queue_decides(manager_client, organization, market):
    campaign, [sub] = market("round_robin", buyers=[{}])
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    sale = sub.buyer.sales.model.objects.unscoped().get(pk=outcome.sales[0].sale_id)
    lead_return = lead_return_request(sale=sale, reason="wrong_number")
    prefix = f"r{lead_return.pk}"
    response = manager_client.post(f"/campaigns/returns/{lead_return.pk}/decide/", {f"{prefix}-decision": "reject"})
    assert response.status_code == 302
    lead_return.refresh_from_db()
    assert lead_return.status == "requested"  # a rejection needs a note
    manager_client.post(f"/campaigns/returns/{lead_return.pk}/decide/", {f"{prefix}-decision": "approve"})
    lead_return.refresh_from_db()
    assert lead_return.status == "approved"
    assert Wallet.objects.unscoped().get(buyer=sub.buyer).balance == Decimal("1000.00")


def test_usage_page_and_markup(client, organization):
    client.force_login(member_of(organization, Role.ADMIN))
    assert client.get("/campaigns/usage/").status_code == 200
    client.post("/campaigns/usage/", {"markup_percent": "25"})
    assert not UsagePricing.objects.unscoped().filter(organization=organization).exists()  # owners only
    client.force_login(member_of(organization, Role.OWNER))
    assert client.post("/campaigns/usage/", {"markup_percent": "2000"}).status_code == 400
    assert client.post("/campaigns/usage/", {"markup_percent": "25"}).status_code == 302
    assert UsagePricing.objects.unscoped().get(organization=organization).markup_percent == Decimal("25.00")
