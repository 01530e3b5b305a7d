"""Returns (a window, a reason, the seller's decision, a REFUND on the ledger, resale to someone else) and
redistribution of unsold leads by hand, through the API, on a schedule and from the command line."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.constants import Role
from accounts.models import AuditEvent
from campaigns.constants import SubmissionOutcome
from campaigns.models import CampaignSubmission, LeadDistribution, LeadReturn, LeadSale, Wallet, WalletEntry
from campaigns.services.distribution import NotRedistributable, lead_distribute, lead_redistribute
from campaigns.services.redistribution import leads_redistribute_due
from campaigns.services.returns import lead_return_approve, lead_return_reject, lead_return_request
from leadflow.exceptions import ServiceError
from leads.intake.pipeline import submission_process, submission_store
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def balance(buyer) -> Decimal:
    return Wallet.objects.unscoped().get(buyer=buyer).balance


def sold(organization, campaign) -> LeadSale:
    outcome = lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    return LeadSale.objects.unscoped().select_related("campaign__organization", "lead").get(pk=outcome.sales[0].sale_id)


def test_an_approved_return_refunds_and_resells_to_another_buyer(
    organization, market, owner, django_capture_on_commit_callbacks
):
    campaign, [first, second] = market("round_robin", buyers=[{}, {}])
    sale = sold(organization, campaign)
    assert sale.buyer_id == first.buyer_id and balance(first.buyer) == Decimal("990.00")
    lead_return = lead_return_request(sale=sale, reason="wrong_number", note="Number disconnected")
    with django_capture_on_commit_callbacks(execute=True):
        approved = lead_return_approve(lead_return=lead_return, actor=owner, resell=True, note="Checked")
    assert (approved.status, approved.decided_by, approved.resell) == ("approved", owner, True)
    refund = approved.refund_entry
    assert (refund.kind, refund.amount, refund.lead_id) == ("refund", Decimal("10.00"), sale.lead_id)
    assert balance(first.buyer) == Decimal("1000.00")
    # Resold in a second round, to the other buyer only.
    rounds = LeadDistribution.objects.unscoped().filter(lead=sale.lead).order_by("round")
    assert [(d.round, d.status) for d in rounds] == [(1, "sold"), (2, "sold")]
    assert LeadSale.objects.unscoped().get(distribution=rounds[1]).buyer_id == second.buyer_id
    assert rounds[1].reasons == {str(first.buyer_id): "already_bought"}
    actions = set(AuditEvent.objects.unscoped().filter(organization=organization).values_list("action", flat=True))
    assert {"lead_return.requested", "lead_return.approved", "wallet.refunded"} <= actions
    with pytest.raises(ServiceError, match="already"):
        lead_return_reject(lead_return=lead_return, actor=owner, note="too late")


def test_returns_respect_the_window_and_happen_once(organization, market, owner):
    campaign, _ = market("round_robin", buyers=[{}])
    sale = sold(organization, campaign)
    with pytest.raises(ServiceError, match="window closed"):
        lead_return_request(sale=sale, reason="bad_email", now=sale.created_at + timedelta(hours=73))
    with pytest.raises(ServiceError, match="Say why"):
        lead_return_request(sale=sale, reason="other")
    lead_return = lead_return_request(sale=sale, reason="bad_email")
    with pytest.raises(ServiceError, match="already been returned"):
        lead_return_request(sale=sale, reason="duplicate")
    with pytest.raises(ServiceError, match="why"):
        lead_return_reject(lead_return=lead_return, actor=owner, note=" ")
    rejected = lead_return_reject(lead_return=lead_return, actor=owner, note="The email works: we checked.")
    assert rejected.status == "rejected" and rejected.refund_entry is None
    assert not WalletEntry.objects.unscoped().filter(kind="refund").exists()

    campaign.return_window_hours = 0
    campaign.save()
    with pytest.raises(ServiceError, match="does not take returns"):
        lead_return_request(sale=sold(organization, campaign), reason="bad_email")


def test_returns_through_the_api(organization, market, user_api_client):
    campaign, [sub] = market("round_robin", buyers=[{}])
    sale = sold(organization, campaign)
    manager = user_api_client(Role.MANAGER)
    created = manager.post("/api/v1/lead-returns/", {"sale": sale.pk, "reason": "duplicate", "note": "Had it"})
    assert created.status_code == 201, created.content
    assert (created.json()["status"], created.json()["buyer"]) == ("requested", sub.buyer_id)
    again = manager.post("/api/v1/lead-returns/", {"sale": sale.pk, "reason": "duplicate"})
    assert again.status_code == 400 and "sale" in again.json()["errors"]
    url = f"/api/v1/lead-returns/{created.json()['id']}/"
    assert manager.post(url + "reject/", {}).status_code == 400  # a rejection needs its note
    approved = manager.post(url + "approve/", {"resell": False})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["refund_entry"] == WalletEntry.objects.unscoped().get(kind="refund").pk
    assert user_api_client(Role.AGENT).get("/api/v1/lead-returns/").status_code == 403


def test_unsold_leads_are_offered_again_by_hand_and_through_the_api(organization, market, user_api_client):
    campaign, [sub] = market("round_robin", buyers=[{"daily_cap": 1}])
    lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    unsold_lead = LeadFactory(organization=organization)
    unsold = lead_distribute(lead=unsold_lead, campaign=campaign)
    assert unsold.reasons == {str(sub.buyer_id): "capped"}

    sub.daily_cap = 5
    sub.save()
    response = user_api_client(Role.MANAGER).post(f"/api/v1/lead-distributions/{unsold.distribution_id}/redistribute/")
    assert response.status_code == 201, response.content
    assert (response.json()["round"], response.json()["status"]) == (2, "sold")
    # Sold and kept: not offered again.
    with pytest.raises(NotRedistributable, match="sold and not returned"):
        lead_redistribute(lead=unsold_lead, campaign=campaign)
    refused = user_api_client(Role.MANAGER).post(f"/api/v1/lead-distributions/{unsold.distribution_id}/redistribute/")
    assert refused.status_code == 400


def test_a_lead_is_offered_at_most_the_campaigns_rounds(organization, market):
    campaign, _ = market("round_robin", buyers=[{"daily_cap": 0}], redistribute_max_rounds=2)
    lead = LeadFactory(organization=organization)
    lead_distribute(lead=lead, campaign=campaign)
    assert lead_redistribute(lead=lead, campaign=campaign).status == "unsold"
    with pytest.raises(NotRedistributable, match="2 times"):
        lead_redistribute(lead=lead, campaign=campaign)


def test_the_schedule_offers_unsold_leads_again_where_campaigns_ask(organization, market):
    campaign, [sub] = market("round_robin", buyers=[{"daily_cap": 0}], auto_redistribute=True)
    manual, _ = market("round_robin", buyers=[{"daily_cap": 0}])
    leads = [LeadFactory(organization=organization) for _ in range(3)]
    for lead in leads:
        lead_distribute(lead=lead, campaign=campaign)
    lead_distribute(lead=LeadFactory(organization=organization), campaign=manual)
    sub.daily_cap = 2
    sub.save()
    # Too soon after their last round: nothing yet.
    assert leads_redistribute_due()["offered"] == 0
    later = timezone.now() + timedelta(minutes=20)
    counts = leads_redistribute_due(now=later)
    assert (counts["offered"], counts["sold"], counts["unsold"]) == (3, 2, 1)
    assert LeadDistribution.objects.unscoped().filter(campaign=manual).count() == 1  # not a redistributing campaign


def test_the_command_redistributes_one_campaign_now(organization, market, capsys):
    campaign, [sub] = market("round_robin", buyers=[{"daily_cap": 0}])
    lead_distribute(lead=LeadFactory(organization=organization), campaign=campaign)
    sub.daily_cap = None
    sub.save()
    call_command("redistribute_leads", "--campaign", str(campaign.pk))
    assert "offered 1, sold 1, unsold 0" in capsys.readouterr().out
    call_command("redistribute_leads")
    assert "offered 0" in capsys.readouterr().out


def test_the_sweep_routes_a_submission_processed_after_it_failed(organization, market):
    campaign, [sub] = market("round_robin", buyers=[{}])
    submission, _ = submission_store(
        organization=organization,
        source="api",
        raw_body='{"email": "late@example.com", "custom": {"age": 70}}',
        context={"campaign_id": campaign.pk},
    )
    CampaignSubmission.objects.unscoped().create(
        organization=organization, submission=submission, campaign=campaign, outcome=SubmissionOutcome.FAILED
    )
    submission_process(submission)  # the intake's own retry, later: it knows nothing of campaigns
    counts = leads_redistribute_due()
    assert (counts["caught_up"], counts["distributed"]) == (1, 1)
    row = CampaignSubmission.objects.unscoped().get(submission=submission)
    assert row.outcome == "accepted" and row.lead is not None
    assert LeadSale.objects.unscoped().get(lead=row.lead).buyer_id == sub.buyer_id
    assert leads_redistribute_due()["distributed"] == 0  # once


def test_a_returned_lead_cannot_be_returned_twice_after_resale(organization, market):
    campaign, _ = market("round_robin", buyers=[{}, {}])
    sale = sold(organization, campaign)
    lead_return = lead_return_request(sale=sale, reason="not_interested")
    lead_return_approve(lead_return=lead_return)
    assert LeadReturn.objects.unscoped().filter(sale=sale).count() == 1
    outcome = lead_redistribute(lead=sale.lead, campaign=campaign)
    assert outcome.sold and outcome.sales[0].buyer_id != sale.buyer_id
