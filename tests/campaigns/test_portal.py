"""The buyer portal: self-registration with an invite code, and isolation — a buyer's people see only their
delivered leads, their wallet and their returns, never another buyer's and never the organization's CRM."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from campaigns.models import Buyer, BuyerInvite, BuyerPortalUser, LeadReturn, LeadSale
from campaigns.services.distribution import lead_distribute
from campaigns.services.portal import buyer_invite_create, buyer_portal_join
from campaigns.services.wallets import wallet_credit
from leadflow.exceptions import ServiceError
from tests.factories import (
    BuyerFactory,
    BuyerSubscriptionFactory,
    CampaignFactory,
    LeadFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def sale_for(buyer, **lead_fields) -> LeadSale:
    """A lead sold to ``buyer`` through the engine (its own campaign, so nobody else competes)."""
    campaign = CampaignFactory(organization=buyer.organization)
    BuyerSubscriptionFactory(organization=buyer.organization, buyer=buyer, campaign=campaign)
    wallet_credit(buyer=buyer, amount="100.00", note=f"Top-up for {buyer.name}")
    outcome = lead_distribute(lead=LeadFactory(organization=buyer.organization, **lead_fields), campaign=campaign)
    return LeadSale.objects.unscoped().get(pk=outcome.sales[0].sale_id)


def portal_user_of(buyer) -> User:
    user = UserFactory()
    BuyerPortalUser.objects.unscoped().create(organization=buyer.organization, buyer=buyer, user=user)
    return user


def test_register_as_a_new_buyer_with_a_code(client, organization):
    invite = buyer_invite_create(organization=organization, max_uses=1)
    response = client.post(
        "/portal/join/",
        {
            "code": invite.code.lower(),
            "name": "Kiran Mehta",
            "email": "kiran@solarbuyers.example",
            "password": PASSWORD,
            "buyer_name": "Solar Buyers",
            "phone": "+919800000001",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/portal/"
    buyer = Buyer.objects.unscoped().get(organization=organization, name="Solar Buyers")
    access = BuyerPortalUser.objects.unscoped().get(buyer=buyer)
    assert access.user.email == "kiran@solarbuyers.example" and access.user.first_name == "Kiran"
    assert client.get("/portal/").status_code == 200  # signed in
    assert BuyerInvite.objects.unscoped().get(pk=invite.pk).status == "used up"
    again = client.post("/portal/join/", {"code": invite.code, "buyer_name": "Again"})
    assert again.status_code == 400 and b"used up" in again.content


def test_join_a_buyer_as_a_signed_in_person(client, organization):
    buyer = BuyerFactory(organization=organization)
    invite = buyer_invite_create(organization=organization, buyer=buyer)
    person = UserFactory()
    client.force_login(person)
    assert client.post("/portal/join/", {"code": invite.code}).status_code == 302
    assert BuyerPortalUser.objects.unscoped().get(user=person).buyer == buyer
    assert client.post("/portal/join/", {"code": invite.code}).status_code == 400  # already in


@pytest.mark.parametrize(
    ("code", "data", "field", "message"),
    [
        ("NOPE", {}, "code", "not valid"),
        ("revoked", {}, "code", "revoked"),
        ("expired", {}, "code", "expired"),
        ("ok", {"email": "taken@example.com"}, "email", "exists"),
        ("ok", {"password": "short"}, "password", "too short"),
        ("ok", {"buyer_name": ""}, "buyer_name", "company"),
    ],
)
def test_bad_codes_and_details_are_field_errors(client, organization, code, data, field, message):
    UserFactory(email="taken@example.com")
    invite = buyer_invite_create(organization=organization)
    if code == "revoked":
        invite.revoked_at = timezone.now()
    if code == "expired":
        invite.expires_at = timezone.now() - timedelta(minutes=1)
    invite.save()
    form = {"code": invite.code if code != "NOPE" else "NOPE", "email": "new@example.com", "password": PASSWORD}
    form["buyer_name"] = "New Buyer"
    form.update(data)
    response = client.post("/portal/join/", form)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not BuyerPortalUser.objects.unscoped().exists()
    assert not User.objects.filter(email="new@example.com").exists()  # nothing half-made


def test_a_buyer_sees_only_its_own_leads_wallet_and_returns(client, organization):
    mine, other_buyer = BuyerFactory(organization=organization), BuyerFactory(organization=organization)
    elsewhere = BuyerFactory(organization=OrganizationFactory())
    my_sale = sale_for(mine, first_name="Mine", last_name="Lead")
    their_sale = sale_for(other_buyer, first_name="Their", last_name="Lead")
    far_sale = sale_for(elsewhere, first_name="Far", last_name="Away")
    LeadReturn.objects.unscoped().create(
        organization=organization,
        sale=their_sale,
        buyer=other_buyer,
        campaign=their_sale.campaign,
        lead=their_sale.lead,
        reason="wrong_number",
        note="their secret note",
    )
    client.force_login(portal_user_of(mine))

    leads = client.get("/portal/").content.decode()
    assert "Mine Lead" in leads and "Their Lead" not in leads and "Far Away" not in leads
    assert client.get(f"/portal/leads/{my_sale.pk}/").status_code == 200
    assert client.get(f"/portal/leads/{their_sale.pk}/").status_code == 404
    assert client.get(f"/portal/leads/{far_sale.pk}/").status_code == 404
    assert client.post(f"/portal/leads/{their_sale.pk}/", {"reason": "bad_email"}).status_code == 404
    wallet = client.get("/portal/wallet/").content.decode()
    assert f"Top-up for {mine.name}" in wallet and f"Top-up for {other_buyer.name}" not in wallet
    assert "their secret note" not in client.get("/portal/returns/").content.decode()

    # The organization's CRM: no page, no API.
    for url in ("/leads/", f"/leads/{my_sale.lead_id}/", "/campaigns/", f"/campaigns/buyers/{mine.pk}/", "/dashboard/"):
        response = client.get(url)
        assert response.status_code in (302, 403, 404), url
        assert b"Mine Lead" not in response.content
        if response.status_code == 302:
            assert response["Location"].startswith("/onboarding"), (url, response["Location"])
    for url in ("/api/v1/leads/", "/api/v1/buyers/", "/api/v1/lead-sales/", "/api/v1/wallet-entries/"):
        assert client.get(url).status_code == 403, url


def test_a_buyer_returns_a_lead_from_the_portal(client, organization):
    buyer = BuyerFactory(organization=organization)
    sale = sale_for(buyer)
    user = portal_user_of(buyer)
    client.force_login(user)
    response = client.post(f"/portal/leads/{sale.pk}/", {"reason": "other", "note": ""})
    assert response.status_code == 400 and b"Say why" in response.content
    assert client.post(f"/portal/leads/{sale.pk}/", {"reason": "wrong_number"}).status_code == 302
    lead_return = LeadReturn.objects.unscoped().get(sale=sale)
    assert (lead_return.status, lead_return.requested_by) == ("requested", user)
    assert b"Waiting for a decision" in client.get("/portal/returns/").content
    LeadSale.objects.unscoped().filter(pk=sale.pk).update(created_at=timezone.now() - timedelta(days=10))
    other = sale_for(buyer)
    LeadSale.objects.unscoped().filter(pk=other.pk).update(created_at=timezone.now() - timedelta(days=10))
    assert b"return window closed" in client.get(f"/portal/leads/{other.pk}/").content
    with pytest.raises(ServiceError):
        buyer_portal_join(code="missing", user=user)


def test_people_without_portal_access_get_nothing(client, organization):
    client.force_login(UserFactory())
    assert client.get("/portal/").status_code == 404
    client.logout()
    response = client.get("/portal/wallet/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_portal_users_land_in_their_portal_after_signing_in(client, organization):
    user = portal_user_of(BuyerFactory(organization=organization))
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/portal/"
