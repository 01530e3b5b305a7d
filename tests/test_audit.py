"""The audit log: what is written, and who can read it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.constants import Role
from accounts.models import AuditEvent, Membership

from .conftest import member_of
from .factories import AuditEventFactory, OrganizationFactory, UserFactory, make_api_key

PASSWORD = "correct horse battery staple"


@pytest.fixture
def org(db):
    return OrganizationFactory()


def _events(action, **filters):
    return AuditEvent.objects.unscoped().filter(action=action, **filters)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


# Logins --------------------------------------------------------------------------------------------------------------


def test_client_login_writes_auth_login(client, org):
    user = member_of(org, Role.AGENT)
    assert not _events("auth.login").exists()
    assert client.login(email=user.email, password=PASSWORD)
    event = _events("auth.login").get()
    assert (event.actor_user, event.organization, event.target_id) == (user, org, str(user.pk))


def test_login_page_writes_auth_login_with_the_address(client, org):
    user = member_of(org, Role.AGENT)
    response = client.post(
        "/accounts/login/",
        {"login": user.email, "password": PASSWORD},
        HTTP_USER_AGENT="pytest-browser/1.0",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302
    event = _events("auth.login", actor_user=user).get()
    assert event.organization == org
    assert event.ip_address == "203.0.113.9"
    assert event.user_agent == "pytest-browser/1.0"


def test_failed_login_writes_auth_login_failed(client, org):
    user = member_of(org, Role.AGENT)
    response = client.post("/accounts/login/", {"login": user.email, "password": "wrong password"})
    assert response.status_code == 200  # the form again, with an error
    assert "_auth_user_id" not in client.session
    event = _events("auth.login_failed").get()
    assert event.actor_user is None
    assert event.target_id == str(user.pk)
    assert event.organization == org
    assert event.changes == {"email": user.email}
    assert not _events("auth.login").exists()


def test_failed_login_for_an_unknown_address(db):
    assert not APIClient().login(email="nobody@example.com", password="whatever")
    event = _events("auth.login_failed").get()
    assert event.organization is None
    assert event.target_id == ""
    assert event.changes == {"email": "nobody@example.com"}


# Changes --------------------------------------------------------------------------------------------------------------


def test_organization_update_records_the_changes(org):
    admin = member_of(org, Role.ADMIN)
    old_name = org.name
    response = _api(admin).patch(
        "/api/v1/organization/", {"name": "Renamed Co", "currency": "USD", "timezone": org.timezone}
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed Co"
    event = _events("organization.updated").get()
    assert event.organization == org
    assert event.actor_user == admin
    # Only what changed is recorded, as [old, new].
    assert event.changes == {"name": [old_name, "Renamed Co"], "currency": ["INR", "USD"]}

    # Saving the same values again writes nothing.
    assert _api(admin).patch("/api/v1/organization/", {"name": "Renamed Co"}).status_code == 200
    assert _events("organization.updated").count() == 1


def test_organization_update_needs_an_admin(org):
    manager = member_of(org, Role.MANAGER)
    response = _api(manager).patch("/api/v1/organization/", {"name": "Nope"})
    assert response.status_code == 403
    org.refresh_from_db()
    assert org.name != "Nope"
    assert not _events("organization.updated").exists()


def test_invalid_organization_update_is_400_and_not_recorded(org):
    admin = member_of(org, Role.ADMIN)
    response = _api(admin).patch("/api/v1/organization/", {"timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert response.json()["errors"]["timezone"]
    assert not _events("organization.updated").exists()


def test_role_change_is_recorded(org):
    owner = member_of(org, Role.OWNER)
    agent = member_of(org, Role.AGENT)
    membership = Membership.objects.unscoped().get(organization=org, user=agent)
    response = _api(owner).patch(f"/api/v1/members/{membership.pk}/", {"role": Role.MANAGER})
    assert response.status_code == 200, response.content
    event = _events("membership.role_changed").get()
    assert (event.organization, event.actor_user, event.target_id) == (org, owner, str(membership.pk))
    assert event.changes == {"role": [Role.AGENT, Role.MANAGER], "user": agent.email}


# Reading the log ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.MANAGER])
def test_audit_api_is_for_admins_only(org, role):
    response = _api(member_of(org, role)).get("/api/v1/audit-events/")
    assert response.status_code == 403
    assert response.json()["type"] == "permission_denied"


def test_audit_api_refuses_api_keys(org):
    _, raw_key = make_api_key(org, scopes=["read", "write", "ingest"])
    response = APIClient().get("/api/v1/audit-events/", HTTP_X_API_KEY=raw_key)
    assert response.status_code == 403


def test_audit_api_is_scoped_to_the_organization(org):
    other = OrganizationFactory()
    ours = AuditEventFactory(organization=org, action="lead.created")
    theirs = AuditEventFactory(organization=other, action="lead.created")
    no_org = AuditEventFactory(organization=None, action="auth.login_failed")
    admin = member_of(org, Role.ADMIN)

    response = _api(admin).get("/api/v1/audit-events/", {"action": "lead.created", "page_size": 500})
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["results"]]
    assert ids == [ours.pk]

    everything = {item["id"] for item in _api(admin).get("/api/v1/audit-events/", {"page_size": 500}).json()["results"]}
    assert ours.pk in everything
    assert theirs.pk not in everything
    assert no_org.pk not in everything
    assert _api(admin).get(f"/api/v1/audit-events/{theirs.pk}/").status_code == 404


def test_audit_api_lists_newest_first_with_actor(org):
    admin = member_of(org, Role.ADMIN)
    agent = member_of(org, Role.AGENT)
    membership = Membership.objects.unscoped().get(organization=org, user=agent)
    owner = UserFactory()
    Membership.objects.unscoped().create(organization=org, user=owner, role=Role.OWNER)
    _api(owner).patch(f"/api/v1/members/{membership.pk}/", {"role": Role.VIEWER})
    _api(owner).patch(f"/api/v1/members/{membership.pk}/", {"role": Role.AGENT})
    results = _api(admin).get("/api/v1/audit-events/", {"action": "membership.role_changed"}).json()["results"]
    assert [r["changes"]["role"] for r in results] == [[Role.VIEWER, Role.AGENT], [Role.AGENT, Role.VIEWER]]
    assert results[0]["actor"] == owner.email
