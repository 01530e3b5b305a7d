"""Google Ads lead form webhooks, with payloads shaped as Google documents them."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from integrations.providers.google_ads import TEST_LEAD_TAG
from integrations.services import connections as services
from leads.models import InboundSubmission, Lead

pytestmark = pytest.mark.django_db

LEAD_ID = "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnopqrstuvwxyz-0123456789-AaBbCcDdEeFf"


@pytest.fixture
def client():
    return APIClient(enforce_csrf_checks=True)


@pytest.fixture
def form(organization):
    return services.connection_create(organization=organization, provider="google_ads", name="Brochure form")


def google_lead(key: str, **overrides) -> dict:
    payload = {
        "lead_id": LEAD_ID,
        "api_version": "1.0",
        "form_id": 40000000000,
        "campaign_id": 12345678901,
        "google_key": key,
        "is_test": False,
        "gcl_id": "EAIaIQobChMI-gclid",
        "adgroup_id": 20000000000,
        "creative_id": 30000000000,
        "user_column_data": [
            {"column_name": "Full Name", "string_value": "FirstName LastName", "column_id": "FULL_NAME"},
            {"column_name": "User Phone", "string_value": "+16505550123", "column_id": "PHONE_NUMBER"},
            {"column_name": "User Email", "string_value": "test@example.com", "column_id": "EMAIL"},
            {"column_name": "Postal Code", "string_value": "94043", "column_id": "POSTAL_CODE"},
            {"column_name": "Which model?", "string_value": "SUV", "column_id": "QUESTION_1"},
        ],
    }
    payload.update(overrides)
    return payload


def post(client, connection, payload) -> object:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(f"/api/webhooks/google-ads/{connection.public_token}/", body, content_type="application/json")


def test_a_lead_is_mapped_by_column_id_and_answered_with_an_empty_200(client, organization, form):
    response = post(client, form, google_lead(form.credential("google_key")))
    assert response.status_code == 200
    assert response.content == b""
    lead = Lead.objects.unscoped().get(organization=organization)
    assert (lead.source, lead.external_id) == ("google_ads", LEAD_ID)
    assert (lead.full_name, lead.first_name, lead.last_name) == ("FirstName LastName", "FirstName", "LastName")
    assert (lead.email, lead.phone, lead.postal_code) == ("test@example.com", "+16505550123", "94043")
    assert (lead.gclid, lead.ad_campaign_id, lead.form_id, lead.ad_id) == (
        "EAIaIQobChMI-gclid",
        "12345678901",
        "40000000000",
        "30000000000",
    )
    assert lead.custom["Which model?"] == "SUV"
    assert lead.custom["google_adgroup_id"] == "20000000000"
    assert TEST_LEAD_TAG not in lead.tags
    submission = InboundSubmission.objects.unscoped().get(lead=lead)
    assert json.loads(submission.raw_body)["lead_id"] == LEAD_ID
    form.refresh_from_db()
    assert form.last_success_at is not None


def test_redeliveries_of_a_lead_id_make_one_lead(client, organization, form):
    payload = google_lead(form.credential("google_key"))
    assert post(client, form, payload).status_code == 200
    assert post(client, form, payload).status_code == 200
    # Google's retry may differ in bytes (key order, new fields): the lead id still matches.
    assert post(client, form, {**payload, "lead_stage": "NEW", "asset_group_id": 5}).status_code == 200
    assert Lead.objects.unscoped().filter(organization=organization).count() == 1
    statuses = list(
        InboundSubmission.objects.unscoped().filter(organization=organization).values_list("status", flat=True)
    )
    assert sorted(statuses) == ["accepted", "duplicate", "duplicate"]


def test_test_leads_are_flagged(client, organization, form):
    assert post(client, form, google_lead(form.credential("google_key"), is_test=True)).status_code == 200
    lead = Lead.objects.unscoped().get(organization=organization)
    assert TEST_LEAD_TAG in lead.tags
    assert lead.custom["google_is_test"] is True
    assert InboundSubmission.objects.unscoped().get(lead=lead).context["is_test"] is True


def test_a_wrong_key_is_401_logged_and_the_payload_kept(client, organization, form, caplog):
    response = post(client, form, google_lead("not-the-key"))
    assert response.status_code == 401
    assert "google_key" in caplog.text
    submission = InboundSubmission.objects.unscoped().get(pk=response.json()["submission_id"])
    assert submission.status == "rejected" and submission.organization_id == organization.pk
    assert not Lead.objects.unscoped().filter(organization=organization).exists()
    # A missing key and a body that is not JSON are refused the same way.
    assert post(client, form, google_lead(None)).status_code == 401
    assert post(client, form, b"not json").status_code == 401
    # The real lead with the same id is not blocked by the refused one.
    assert post(client, form, google_lead(form.credential("google_key"))).status_code == 200
    assert Lead.objects.unscoped().filter(organization=organization).count() == 1


def test_unknown_token_is_404_and_a_lead_without_contact_is_400(client, organization, form):
    assert post(client, type("C", (), {"public_token": "nope"})(), google_lead("x")).status_code == 404
    payload = google_lead(form.credential("google_key"), user_column_data=[])
    response = post(client, form, payload)
    assert response.status_code == 400
    assert response.json()["submission_id"]


def test_work_email_is_used_when_no_personal_email_was_asked(client, organization, form):
    columns = [
        {"column_name": "Work Email", "string_value": "asha@acme.example", "column_id": "WORK_EMAIL"},
        {"column_name": "Company", "string_value": "Acme", "column_id": "COMPANY_NAME"},
        {"string_value": "Pune", "column_id": "CITY"},  # column_name is not always populated
    ]
    assert post(client, form, google_lead(form.credential("google_key"), user_column_data=columns)).status_code == 200
    lead = Lead.objects.unscoped().get(organization=organization)
    assert (lead.email, lead.company, lead.city) == ("asha@acme.example", "Acme", "Pune")


def test_standard_shape_leads_with_a_provider_source_still_map(organization):
    """Manual entries, imports and the demo send source google_ads/facebook/linkedin in the standard shape."""
    from leads.intake.pipeline import lead_intake

    for source in ("google_ads", "facebook", "linkedin"):
        outcome = lead_intake(
            organization=organization, source=source, payload={"name": "Std Shape", "email": f"{source}@example.com"}
        )
        assert outcome.status == "accepted", outcome.errors
        assert outcome.lead.email == f"{source}@example.com"
