"""API keys and user tokens: how integrations and scripts authenticate."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from rest_framework import mixins, status
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory

from accounts.constants import ApiKeyScope, Role
from accounts.models import ApiKey, AuditEvent, Membership
from leadflow.api.viewsets import OrganizationScopedViewSet

from .conftest import member_of
from .factories import OrganizationFactory, UserFactory, make_api_key

# Hypothesis caches in ./.hypothesis by default; keep the working tree clean.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "leadflow-hypothesis"))

URL = "/api/v1/organization/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def org(db):
    return OrganizationFactory()


def _get(raw_key):
    return APIClient().get(URL, HTTP_X_API_KEY=raw_key)


# Sending the key -----------------------------------------------------------------------------------------------------


def test_key_in_authorization_header_or_x_api_key(org):
    _, raw_key = make_api_key(org, scopes=["read"])
    by_authorization = APIClient().get(URL, HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    by_header = APIClient().get(URL, HTTP_X_API_KEY=raw_key)
    assert by_authorization.status_code == 200
    assert by_header.status_code == 200
    assert by_authorization.json()["id"] == by_header.json()["id"] == org.pk
    # A key acts for its organization, not for a person: there is no role.
    assert by_header.json()["role"] is None


def test_revoked_key_is_refused(org):
    api_key, raw_key = make_api_key(org, scopes=["read"])
    assert _get(raw_key).status_code == 200
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    response = _get(raw_key)
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "authentication_failed"
    assert "revoked" in body["detail"]


def test_expired_key_is_refused(org):
    api_key, raw_key = make_api_key(org, scopes=["read"], expires_at=timezone.now() + timedelta(days=1))
    assert _get(raw_key).status_code == 200
    api_key.expires_at = timezone.now() - timedelta(seconds=1)
    api_key.save(update_fields=["expires_at"])
    response = _get(raw_key)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize(
    "garbage",
    ["nonsense", "lf_", "lf_deadbeef_wrong-secret", "lf_zz!_x", "Api-Key", "lf_00000000_" + "x" * 200],
)
def test_garbage_key_is_refused(org, garbage):
    make_api_key(org, scopes=["read"])
    response = _get(garbage)
    assert response.status_code == 401
    assert response.json()["type"] == "authentication_failed"


def test_right_lookup_id_with_wrong_secret_is_refused(org):
    api_key, raw_key = make_api_key(org, scopes=["read"])
    forged = f"{api_key.display_prefix}_{'A' * 43}"
    assert forged != raw_key
    assert _get(forged).status_code == 401


def test_key_of_a_suspended_organization_is_refused(org):
    _, raw_key = make_api_key(org, scopes=["read"])
    org.is_active = False
    org.save(update_fields=["is_active"])
    response = _get(raw_key)
    assert response.status_code == 401
    assert "suspended" in response.json()["detail"]


# Scopes --------------------------------------------------------------------------------------------------------------


def test_key_without_the_read_scope_cannot_read(org):
    _, raw_key = make_api_key(org, scopes=["ingest"])
    response = _get(raw_key)
    assert response.status_code == 403
    assert response.json()["type"] == "permission_denied"
    assert "read" in response.json()["detail"]


class _WritableThings(mixins.CreateModelMixin, mixins.UpdateModelMixin, OrganizationScopedViewSet):
    """A stand-in endpoint that accepts keys for writes (write_scope="write"), as lead ingestion will."""

    queryset = Membership.objects
    write_scope = ApiKeyScope.WRITE

    def create(self, request, *args, **kwargs):
        return Response({"organization": request.organization.pk}, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        return Response({"organization": request.organization.pk})


def test_read_only_key_cannot_write(org):
    _, read_key = make_api_key(org, scopes=["read"])
    _, write_key = make_api_key(org, scopes=["read", "write"])
    view = _WritableThings.as_view({"post": "create", "patch": "partial_update"})
    factory = APIRequestFactory()

    for method in ("post", "patch"):
        refused = view(getattr(factory, method)("/things/", {}, format="json", HTTP_X_API_KEY=read_key))
        assert refused.status_code == 403, method
        assert "write" in str(refused.data["detail"])
        allowed = view(getattr(factory, method)("/things/", {}, format="json", HTTP_X_API_KEY=write_key))
        assert allowed.status_code in (200, 201), method
        assert allowed.data == {"organization": org.pk}

    # The real endpoints refuse a read key too, and change nothing.
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=read_key)
    assert client.patch(URL, {"name": "Renamed"}).status_code == 403
    assert client.post("/api/v1/invitations/", {"email": "x@example.com"}).status_code == 403
    org.refresh_from_db()
    assert org.name != "Renamed"


# Bookkeeping -------------------------------------------------------------------------------------------------------


def test_last_used_at_is_recorded(org):
    api_key, raw_key = make_api_key(org, scopes=["read"])
    assert api_key.last_used_at is None
    assert _get(raw_key).status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert abs(api_key.last_used_at - timezone.now()) < timedelta(minutes=5)


def test_keys_are_stored_hashed(org):
    api_key, raw_key = make_api_key(org, scopes=["read", "write"])
    row = ApiKey.objects.unscoped().get(pk=api_key.pk)
    assert row.key_hash == ApiKey.hash_key(raw_key)
    assert raw_key not in repr(model_to_dict(row))
    secret = raw_key.split("_", 2)[2]
    assert all(secret not in str(value) for value in model_to_dict(row).values())
    # Nor did the audit log keep it.
    assert all(raw_key not in repr(model_to_dict(event)) for event in AuditEvent.objects.unscoped().all())


# Managing keys through the API -------------------------------------------------------------------------------------------


@pytest.fixture
def owner_client(org):
    client = APIClient()
    client.force_authenticate(user=member_of(org, Role.OWNER))
    return client


def test_create_shows_the_key_once_and_delete_revokes(org, owner_client):
    response = owner_client.post("/api/v1/api-keys/", {"name": "Zapier", "scopes": ["read", "ingest"]})
    assert response.status_code == 201, response.content
    created = response.json()
    raw_key = created["key"]
    assert raw_key.startswith(f"{created['prefix']}_")
    assert sorted(created["scopes"]) == ["ingest", "read"]
    assert created["status"] == "active"

    # The key works, and is never shown again.
    assert _get(raw_key).status_code == 200
    listing = owner_client.get("/api/v1/api-keys/")
    detail = owner_client.get(f"/api/v1/api-keys/{created['id']}/")
    assert listing.status_code == detail.status_code == 200
    assert [k["id"] for k in listing.json()["results"]] == [created["id"]]
    for response in (listing, detail):
        assert raw_key not in response.content.decode()
    assert "key" not in detail.json()

    created_event = AuditEvent.objects.unscoped().get(action="api_key.created", target_id=str(created["id"]))
    assert created_event.organization_id == org.pk

    assert owner_client.delete(f"/api/v1/api-keys/{created['id']}/").status_code == 204
    response = _get(raw_key)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert owner_client.get(f"/api/v1/api-keys/{created['id']}/").json()["status"] == "revoked"
    revoked_event = AuditEvent.objects.unscoped().get(action="api_key.revoked", target_id=str(created["id"]))
    assert revoked_event.organization_id == org.pk


def test_create_validates_scopes(owner_client):
    response = owner_client.post("/api/v1/api-keys/", {"name": "Bad", "scopes": ["root"]})
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    # The list field's error is keyed by the item: {"scopes.0": ['"root" is not a valid choice.']}
    assert [field for field in response.json()["errors"] if field.startswith("scopes")]
    assert not ApiKey.objects.unscoped().filter(name="Bad").exists()


def test_agents_cannot_manage_keys(org):
    client = APIClient()
    client.force_authenticate(user=member_of(org, Role.MANAGER))
    assert client.get("/api/v1/api-keys/").status_code == 403
    assert client.post("/api/v1/api-keys/", {"name": "Nope", "scopes": ["read"]}).status_code == 403
    assert not ApiKey.objects.unscoped().filter(name="Nope").exists()


# User tokens --------------------------------------------------------------------------------------------------------


def test_token_flow(org):
    user = UserFactory(email="token.user@example.com")
    Membership.objects.unscoped().create(organization=org, user=user, role=Role.AGENT)
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"email": "Token.User@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.content
    token = response.json()["token"]

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    assert [o["id"] for o in me.json()["organizations"]] == [org.pk]
    assert AuditEvent.objects.unscoped().filter(action="auth.login", actor_user=user).exists()

    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


def test_token_with_a_bad_password(db):
    UserFactory(email="token.user@example.com")
    response = APIClient().post("/api/v1/auth/token/", {"email": "token.user@example.com", "password": "wrong"})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["errors"]["password"]
    assert "token" not in body


# Property: nothing random authenticates -------------------------------------------------------------------------------

_latin1 = st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n")
_random_keys = st.one_of(
    st.text(_latin1, max_size=120),
    # Shaped like a key, so the lookup runs: lf_<anything>_<anything>
    st.builds(lambda a, b: f"lf_{a}_{b}", st.text(_latin1, max_size=20), st.text(_latin1, max_size=60)),
    st.builds(lambda a, b: f"lf_{a}_{b}", st.from_regex(r"[0-9a-f]{8}", fullmatch=True), st.text(_latin1, max_size=60)),
)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_key=_random_keys)
def test_random_strings_never_authenticate(raw_key):
    org = OrganizationFactory()
    api_key, real_key = make_api_key(org, scopes=["read"])
    if raw_key.strip() == real_key:
        return
    client = APIClient()
    for response in (
        client.get(URL, HTTP_X_API_KEY=raw_key),
        client.get(URL, HTTP_AUTHORIZATION=f"Api-Key {raw_key}"),
        # The real key's public part with a random secret.
        client.get(URL, HTTP_X_API_KEY=f"{api_key.display_prefix}_{raw_key}"),
    ):
        assert response.status_code in (401, 403), (raw_key, response.status_code, response.content[:200])
        assert response.json()["type"] in ("authentication_failed", "not_authenticated")


def test_each_key_has_its_own_request_quota(org, monkeypatch):
    """The per-key throttle counts in Redis (one INCR per request): past the rate a key gets 429 with
    Retry-After, while another key of the same organization is unaffected."""
    from leadflow.api.throttling import ApiKeyRateThrottle

    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {**ApiKeyRateThrottle.THROTTLE_RATES, "api_key": "3/min"})
    _, busy = make_api_key(org, scopes=["read"])
    _, quiet = make_api_key(org, scopes=["read"])
    statuses = [_get(busy).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = _get(busy)
    assert refused.json()["type"] == "throttled" and 0 < int(refused["Retry-After"]) <= 60
    assert _get(quiet).status_code == 200
