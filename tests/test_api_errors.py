"""One error format, paginated lists and no N+1 on the members list."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from accounts.constants import Role
from accounts.models import Invitation

from .conftest import member_of
from .factories import ApiKeyFactory, AuditEventFactory, InvitationFactory, MembershipFactory, OrganizationFactory

ERROR_KEYS = {"type", "detail", "errors"}


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def owner_client(org):
    client = APIClient()
    client.force_authenticate(user=member_of(org, Role.OWNER))
    return client


def test_validation_error_shape(owner_client):
    response = owner_client.post("/api/v1/invitations/", {"email": "not-an-email", "role": Role.AGENT})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "validation_error"
    assert body["detail"] == "Invalid input."
    assert list(body["errors"]) == ["email"]
    assert isinstance(body["errors"]["email"], list)
    assert body["errors"]["email"][0] == "Enter a valid email address."
    assert not Invitation.objects.unscoped().exists()


def test_several_field_errors_are_all_reported(owner_client):
    response = owner_client.post("/api/v1/invitations/", {"email": "", "role": "emperor"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email", "role"}


def test_service_refusal_shape(owner_client, org):
    existing = member_of(org, Role.AGENT)
    response = owner_client.post("/api/v1/invitations/", {"email": existing.email, "role": Role.AGENT})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "validation_error"
    assert "already a member" in body["errors"]["email"][0]


def test_parse_error_shape(owner_client):
    response = owner_client.generic("POST", "/api/v1/invitations/", "{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "parse_error"
    assert body["errors"] == {}


def test_not_found_shape(owner_client):
    response = owner_client.get("/api/v1/members/987654321/")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "not_found"
    assert body["errors"] == {}
    assert body["detail"]


@pytest.mark.parametrize("url", ["/api/v1/organization/", "/api/v1/members/", "/api/v1/me/"])
def test_no_credentials_is_401(db, url):
    response = APIClient().get(url)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "not_authenticated"
    assert body["errors"] == {}
    assert response.has_header("WWW-Authenticate")


def test_permission_denied_shape(org):
    client = APIClient()
    client.force_authenticate(user=member_of(org, Role.VIEWER))
    response = client.get("/api/v1/audit-events/")
    assert response.status_code == 403
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["type"] == "permission_denied"
    assert "admin" in body["detail"]


class _RaisesDjangoErrors(APIView):
    """Code under an API view may raise Django's own exceptions (a shared helper, get_object_or_404)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise PermissionDenied("Not in this plan.")

    def delete(self, request):
        raise Http404("No such thing")


def test_django_exceptions_get_the_same_shape(db):
    view = _RaisesDjangoErrors.as_view()
    factory = APIRequestFactory()
    response = view(factory.get("/x/"))
    assert response.status_code == 403
    assert response.data == {"type": "permission_denied", "detail": "Not in this plan.", "errors": {}}
    response = view(factory.delete("/x/"))
    assert response.status_code == 404
    assert response.data["type"] == "not_found"
    assert set(response.data) == ERROR_KEYS


def test_method_not_allowed_shape(owner_client):
    response = owner_client.post("/api/v1/audit-events/", {})
    assert response.status_code == 405
    assert response.json()["type"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("url", "factory"),
    [
        ("/api/v1/members/", MembershipFactory),
        ("/api/v1/invitations/", InvitationFactory),
        ("/api/v1/api-keys/", ApiKeyFactory),
        ("/api/v1/audit-events/", AuditEventFactory),
    ],
)
def test_lists_are_paginated(owner_client, org, url, factory):
    factory.create_batch(3, organization=org)
    response = owner_client.get(url, {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] >= 3
    assert len(body["results"]) == 2
    assert body["previous"] is None
    assert "page=2" in body["next"]
    second = owner_client.get(body["next"]).json()
    assert second["previous"] is not None
    first_ids = {item["id"] for item in body["results"]}
    assert first_ids.isdisjoint(item["id"] for item in second["results"])


def test_members_list_has_no_n_plus_one(org, owner_client, django_assert_max_num_queries):
    MembershipFactory(organization=org, role=Role.AGENT)
    with CaptureQueriesContext(connection) as two_members:
        response = owner_client.get("/api/v1/members/")
    assert response.status_code == 200
    assert response.json()["count"] == 2

    MembershipFactory.create_batch(8, organization=org, role=Role.AGENT)
    with django_assert_max_num_queries(len(two_members)):
        response = owner_client.get("/api/v1/members/")
    assert response.json()["count"] == 10
    assert all(item["user"]["email"] for item in response.json()["results"])
