"""Generic webhooks (Zapier, Pabbly, n8n, Make): raw payload first, per-connection dotted-path mapping, optional
HMAC, answers like the ingest API."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from integrations.constants import ConnectionStatus
from integrations.providers.generic import apply_mapping, path_parts, resolve_path
from integrations.services import connections as services
from leads.models import InboundSubmission, Lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    # enforce_csrf_checks: the endpoint must work with no CSRF token, as providers send none.
    return APIClient(enforce_csrf_checks=True)


@pytest.fixture
def zap(organization):
    return services.connection_create(organization=organization, provider="webhook", name="Zapier")


def _url(connection) -> str:
    return f"/api/webhooks/inbound/{connection.public_token}/"


def _submissions(organization):
    return InboundSubmission.objects.unscoped().filter(organization=organization, source="webhook")


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_flat_json_makes_a_lead_and_stores_the_raw_body_first(client, organization, zap):
    body = json.dumps({"name": "Asha Rao", "email": "asha@example.com", "phone": "9812345678", "budget": "5-10L"})
    response = client.post(_url(zap), body, content_type="application/json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "accepted" and data["duplicate_of"] is None
    lead = Lead.objects.unscoped().get(pk=data["id"])
    assert (lead.organization_id, lead.source, lead.email, lead.phone) == (
        organization.pk,
        "webhook",
        "asha@example.com",
        "+919812345678",
    )
    assert lead.custom == {"budget": "5-10L"}
    submission = InboundSubmission.objects.unscoped().get(pk=data["submission_id"])
    assert submission.raw_body == body
    assert submission.context["connection_id"] == zap.pk
    zap.refresh_from_db()
    assert zap.last_success_at is not None and zap.consecutive_errors == 0


def test_form_encoded_bodies_are_accepted(client, organization, zap):
    body = urlencode({"full_name": "Ravi K", "email": "ravi@example.com", "utm_source": "site"})
    response = client.post(_url(zap), body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert (lead.full_name, lead.utm_source) == ("Ravi K", "site")


def test_nested_payloads_map_by_dotted_paths_with_defaults(client, organization, zap):
    services.connection_mapping_set(
        connection=zap,
        mapping={
            "email": "data.contact.email",
            "phone": "data.contact.phones[0]",
            "full_name": "data.contact.name",
            "custom.budget": "data.answers.1.value",
            "external_id": "data.id",
        },
        defaults={"utm_source": "pabbly", "tags": ["pabbly"]},
    )
    payload = {
        "data": {
            "id": "sub-981",
            "contact": {"name": "Meera Shah", "email": "MEERA@example.com", "phones": ["+91 98123 45679", "x"]},
            "answers": [{"value": "Pune"}, {"value": "10-20L"}],
        }
    }
    response = client.post(_url(zap), payload, format="json")
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert (lead.email, lead.phone, lead.full_name, lead.external_id) == (
        "meera@example.com",
        "+919812345679",
        "Meera Shah",
        "sub-981",
    )
    assert lead.custom["budget"] == "10-20L"
    assert (lead.utm_source, lead.tags) == ("pabbly", ["pabbly"])


def test_n8n_items_are_unwrapped(client, organization, zap):
    item = {"headers": {"host": "x"}, "params": {}, "query": {}, "body": {"email": "n8n@example.com"}}
    response = client.post(_url(zap), [item], format="json")
    assert response.status_code == 201, response.content
    assert Lead.objects.unscoped().get(pk=response.json()["id"]).email == "n8n@example.com"


def test_identical_redeliveries_make_one_lead(client, organization, zap):
    body = json.dumps({"email": "same@example.com", "name": "Same Person"})
    first = client.post(_url(zap), body, content_type="application/json")
    again = client.post(_url(zap), body, content_type="application/json")
    # Answered like the first time, as the ingest API answers a repeated Idempotency-Key.
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["submission_id"] == first.json()["submission_id"]
    assert Lead.objects.unscoped().filter(organization=organization).count() == 1
    # A sender's Idempotency-Key counts too, whatever the body's bytes.
    keyed = client.post(_url(zap), {"email": "k@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="zap-run-1")
    keyed_again = client.post(
        _url(zap), {"email": "k@example.com", "at": "later"}, format="json", HTTP_IDEMPOTENCY_KEY="zap-run-1"
    )
    assert keyed.json()["id"] == keyed_again.json()["id"]
    assert Lead.objects.unscoped().filter(organization=organization).count() == 2


def test_field_errors_answer_400_with_the_submission_id(client, organization, zap):
    response = client.post(_url(zap), {"name": "No Contact"}, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["type"] == "validation_error"
    assert "non_field_errors" in data["errors"]
    submission = InboundSubmission.objects.unscoped().get(pk=data["submission_id"])
    assert submission.status == "rejected"
    zap.refresh_from_db()
    assert zap.consecutive_errors == 1 and "rejected" in zap.last_error


def test_a_rejected_delivery_is_processed_again_after_the_mapping_is_fixed(client, organization, zap):
    payload = {"lead": {"mail": "fixed@example.com"}}
    assert client.post(_url(zap), payload, format="json").status_code == 400
    services.connection_mapping_set(connection=zap, mapping={"email": "lead.mail"}, defaults={})
    response = client.post(_url(zap), payload, format="json")
    assert response.status_code == 201
    assert _submissions(organization).count() == 1


def test_unknown_and_disconnected_tokens_are_404(client, organization, zap):
    assert client.post("/api/webhooks/inbound/nope/", {"email": "a@example.com"}, format="json").status_code == 404
    services.connection_disconnect(connection=zap)
    assert client.post(_url(zap), {"email": "a@example.com"}, format="json").status_code == 404
    assert not _submissions(organization).exists()


def test_a_google_ads_token_does_not_open_the_generic_endpoint(client, organization):
    google = services.connection_create(organization=organization, provider="google_ads", name="Form")
    assert client.post(_url(google), {"email": "a@example.com"}, format="json").status_code == 404


def test_hmac_secret_is_required_once_set(client, organization, zap, caplog):
    secret = services.connection_webhook_secret_set(connection=zap, enabled=True)
    body = json.dumps({"email": "signed@example.com"}).encode()

    unsigned = client.post(_url(zap), body, content_type="application/json")
    assert unsigned.status_code == 401
    forged = client.post(
        _url(zap), body, content_type="application/json", HTTP_X_LEADFLOW_SIGNATURE=_sign("wrong", body)
    )
    assert forged.status_code == 401
    assert forged.json()["type"] == "authentication_failed"
    assert "signature" in caplog.text
    # Both were stored, and rejected: never a lead.
    refused = _submissions(organization)
    assert refused.count() == 2 and set(refused.values_list("status", flat=True)) == {"rejected"}
    assert forged.json()["submission_id"] in set(refused.values_list("pk", flat=True))
    assert not Lead.objects.unscoped().filter(organization=organization).exists()

    signed = client.post(
        _url(zap), body, content_type="application/json", HTTP_X_LEADFLOW_SIGNATURE=_sign(secret, body)
    )
    assert signed.status_code == 201, signed.content
    # Meta's header name works as well.
    other = json.dumps({"email": "hub@example.com"}).encode()
    assert (
        client.post(
            _url(zap), other, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=_sign(secret, other)
        ).status_code
        == 201
    )


def test_an_error_connection_still_receives(client, organization, zap):
    type(zap).objects.unscoped().filter(pk=zap.pk).update(status=ConnectionStatus.ERROR, consecutive_errors=7)
    response = client.post(_url(zap), {"email": "still@example.com"}, format="json")
    assert response.status_code == 201
    zap.refresh_from_db()
    assert (zap.status, zap.consecutive_errors) == (ConnectionStatus.CONNECTED, 0)


def test_the_endpoint_ignores_session_cookies(client, organization, zap, owner):
    client.force_login(owner)  # a browser's session must not matter (and brings no CSRF requirement)
    assert client.post(_url(zap), {"email": "c@example.com"}, format="json").status_code == 201


# The mapping as a function --------------------------------------------------------------------------------------------


def test_paths_accept_dots_and_brackets():
    payload = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert path_parts("a.b[1].c") == ["a", "b", "1", "c"]
    assert resolve_path(payload, "a.b[1].c") == 2
    assert resolve_path(payload, "a.b.0.c") == 1
    assert resolve_path(payload, "a.b.-1.c") == 2
    assert resolve_path(payload, "a.b.5.c") is None
    assert resolve_path(payload, "a.x.c") is None
    assert resolve_path(payload, "a.b.c") is None


def test_defaults_fill_only_what_is_empty():
    shaped = apply_mapping(
        {"email": "", "phone": "1", "x": {"y": "z"}},
        mapping={"custom.why": "x.y"},
        defaults={"email": "fallback@example.com", "phone": "2", "custom.why": "unused"},
    )
    assert (shaped["email"], shaped["phone"], shaped["custom"]["why"]) == ("fallback@example.com", "1", "z")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)


@given(payload=json_values, path=st.text(max_size=12))
def test_resolving_any_path_in_any_payload_never_raises(payload, path):
    resolve_path(payload, path)


def test_a_list_step_is_ascii_digits_only():
    # Hypothesis found "²": str.isdigit() says yes, int() refuses it.
    assert resolve_path(["a", "b"], "²") is None
    assert resolve_path({"items": ["a", "b"]}, "items[²]") is None
    assert resolve_path({"items": [{"email": "x@example.com"}]}, "items[0].email") == "x@example.com"
    assert resolve_path({"items": ["a", "b"]}, "items.-1") == "b"


def test_a_delivery_still_being_processed_answers_409(client, organization, zap):
    body = json.dumps({"email": "busy@example.com"})
    first = client.post(_url(zap), body, content_type="application/json")
    # As if the first were still between storing and processing (a concurrent identical delivery).
    InboundSubmission.objects.unscoped().filter(pk=first.json()["submission_id"]).update(status="received")
    again = client.post(_url(zap), body, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["submission_id"] == first.json()["submission_id"]
    assert Lead.objects.unscoped().filter(organization=organization).count() == 1
