"""Roles and the team: who may invite, promote, demote and remove, through the services and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.constants import ROLE_RANK, Role
from accounts.models import AuditEvent, Invitation, Membership
from leadflow.exceptions import PermissionDeniedError, ServiceError

from .conftest import member_of
from .factories import InvitationFactory, MembershipFactory, OrganizationFactory, UserFactory


@pytest.fixture
def org(db):
    return OrganizationFactory()


def _membership(org, user) -> Membership:
    return Membership.objects.unscoped().get(organization=org, user=user)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


# Ranks ---------------------------------------------------------------------------------------------------------------


def test_role_ranks_are_ordered():
    order = [Role.VIEWER, Role.AGENT, Role.MANAGER, Role.ADMIN, Role.OWNER]
    assert sorted(Role.values, key=lambda r: ROLE_RANK[Role(r)]) == order
    assert len(set(ROLE_RANK.values())) == len(Role.values)


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.OWNER, Role.ADMIN, True),
        (Role.ADMIN, Role.ADMIN, True),
        (Role.MANAGER, Role.ADMIN, False),
        (Role.AGENT, Role.VIEWER, True),
        (Role.VIEWER, Role.AGENT, False),
        (Role.ADMIN, Role.OWNER, False),
    ],
)
def test_has_role(role, required, allowed):
    assert Membership(role=role).has_role(required) is allowed


# Inviting ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AGENT, Role.VIEWER, Role.MANAGER])
def test_below_admin_cannot_invite(org, role):
    response = _client(member_of(org, role)).post(
        "/api/v1/invitations/", {"email": "new@example.com", "role": Role.AGENT}
    )
    assert response.status_code == 403
    body = response.json()
    assert body["type"] == "permission_denied"
    assert set(body) >= {"type", "detail", "errors"}
    assert not Invitation.objects.unscoped().filter(email="new@example.com").exists()


def test_admin_cannot_grant_owner(org):
    admin = member_of(org, Role.ADMIN)
    agent = member_of(org, Role.AGENT)
    client = _client(admin)

    response = client.post("/api/v1/invitations/", {"email": "boss@example.com", "role": Role.OWNER})
    assert response.status_code == 403
    assert response.json()["type"] == "permission_denied"
    assert response.json()["errors"]["role"]
    assert not Invitation.objects.unscoped().filter(email="boss@example.com").exists()

    agent_membership = _membership(org, agent)
    response = client.patch(f"/api/v1/members/{agent_membership.pk}/", {"role": Role.OWNER})
    assert response.status_code == 403
    assert response.json()["errors"]["role"]
    agent_membership.refresh_from_db()
    assert agent_membership.role == Role.AGENT

    # An admin may grant up to admin.
    response = client.patch(f"/api/v1/members/{agent_membership.pk}/", {"role": Role.ADMIN})
    assert response.status_code == 200, response.content
    assert response.json()["role"] == Role.ADMIN


def test_admin_cannot_demote_an_owner(org):
    owner = member_of(org, Role.OWNER)
    member_of(org, Role.OWNER)
    admin = member_of(org, Role.ADMIN)
    owner_membership = _membership(org, owner)
    response = _client(admin).patch(f"/api/v1/members/{owner_membership.pk}/", {"role": Role.AGENT})
    assert response.status_code == 403
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


# The last owner ----------------------------------------------------------------------------------------------------


def test_last_owner_cannot_be_demoted(org):
    owner = member_of(org, Role.OWNER)
    membership = _membership(org, owner)
    response = _client(owner).patch(f"/api/v1/members/{membership.pk}/", {"role": Role.ADMIN})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["errors"]["role"]
    membership.refresh_from_db()
    assert membership.role == Role.OWNER

    with pytest.raises(ServiceError) as error:
        services.membership_change_role(membership=membership, role=Role.VIEWER, actor=membership)
    assert error.value.field == "role"


def test_last_owner_cannot_leave(org):
    owner = member_of(org, Role.OWNER)
    membership = _membership(org, owner)
    response = _client(owner).delete(f"/api/v1/members/{membership.pk}/")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["errors"]["non_field_errors"]
    assert "owner" in body["errors"]["non_field_errors"][0]
    assert Membership.objects.unscoped().filter(pk=membership.pk).exists()


def test_owner_can_promote_and_then_step_down(org):
    owner = member_of(org, Role.OWNER)
    agent = member_of(org, Role.AGENT)
    client = _client(owner)
    agent_membership = _membership(org, agent)

    response = client.patch(f"/api/v1/members/{agent_membership.pk}/", {"role": Role.OWNER})
    assert response.status_code == 200, response.content
    assert response.json()["role"] == Role.OWNER
    event = AuditEvent.objects.unscoped().get(action="membership.role_changed", target_id=str(agent_membership.pk))
    assert event.changes["role"] == [Role.AGENT, Role.OWNER]
    assert event.actor_user == owner

    # With a second owner the first may step down.
    own = _membership(org, owner)
    response = client.patch(f"/api/v1/members/{own.pk}/", {"role": Role.ADMIN})
    assert response.status_code == 200, response.content
    own.refresh_from_db()
    assert own.role == Role.ADMIN


def test_member_can_leave(org):
    member_of(org, Role.OWNER)
    agent = member_of(org, Role.AGENT)
    membership = _membership(org, agent)
    response = _client(agent).delete(f"/api/v1/members/{membership.pk}/")
    assert response.status_code == 204, response.content
    assert not Membership.objects.unscoped().filter(pk=membership.pk).exists()
    agent.refresh_from_db()
    assert agent.active_organization_id is None
    assert AuditEvent.objects.unscoped().filter(action="membership.removed", organization=org).exists()


def test_member_cannot_remove_someone_else(org):
    owner = member_of(org, Role.OWNER)
    agent = member_of(org, Role.AGENT)
    viewer = member_of(org, Role.VIEWER)
    for target in (owner, viewer):
        target_membership = _membership(org, target)
        response = _client(agent).delete(f"/api/v1/members/{target_membership.pk}/")
        assert response.status_code == 403
        assert Membership.objects.unscoped().filter(pk=target_membership.pk).exists()


def test_member_can_leave_from_the_team_page(org, client):
    member_of(org, Role.OWNER)
    viewer = member_of(org, Role.VIEWER)
    membership = _membership(org, viewer)
    client.force_login(viewer)
    response = client.post(f"/settings/team/members/{membership.pk}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.unscoped().filter(pk=membership.pk).exists()


# Invitations -------------------------------------------------------------------------------------------------------


@pytest.fixture
def owner_membership(org):
    return _membership(org, member_of(org, Role.OWNER))


def test_invitation_email_is_sent_on_commit(org, owner_membership, django_capture_on_commit_callbacks, mailoutbox):
    client = _client(owner_membership.user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/api/v1/invitations/", {"email": "New.Person@Example.com", "role": Role.MANAGER})
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "new.person@example.com"
    assert response.json()["status"] == "pending"
    # Nothing is sent before the transaction commits.
    assert mailoutbox == []
    assert callbacks
    for callback in callbacks:
        callback()
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    invitation = Invitation.objects.unscoped().get(email="new.person@example.com")
    assert message.to == ["new.person@example.com"]
    assert org.name in message.subject
    assert f"/invitations/{invitation.token}/" in message.body
    assert AuditEvent.objects.unscoped().filter(action="invitation.created", organization=org).exists()


def test_accepting_an_invitation(org, owner_membership, django_capture_on_commit_callbacks, mailoutbox):
    other_org = OrganizationFactory()
    invitee = member_of(other_org, Role.OWNER)  # already works somewhere else
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_create(
            organization=org, email=invitee.email.upper(), role=Role.MANAGER, inviter=owner_membership
        )
    assert len(mailoutbox) == 1

    membership = services.invitation_accept(token=invitation.token, user=invitee)
    assert (membership.organization_id, membership.user_id, membership.role) == (org.pk, invitee.pk, Role.MANAGER)
    invitee.refresh_from_db()
    assert invitee.active_organization_id == org.pk
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert invitation.accepted_by == invitee
    event = AuditEvent.objects.unscoped().get(action="invitation.accepted", organization=org)
    assert event.actor_user == invitee
    assert event.changes == {"role": Role.MANAGER}

    # A used link does not work twice.
    with pytest.raises(ServiceError) as error:
        services.invitation_accept(token=invitation.token, user=invitee)
    assert error.value.code == "accepted"


def test_accepting_through_the_page_switches_the_session(org, owner_membership, client):
    invitee = UserFactory()
    invitation = services.invitation_create(
        organization=org, email=invitee.email, role=Role.AGENT, inviter=owner_membership
    )
    client.force_login(invitee)
    response = client.post(f"/invitations/{invitation.token}/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.session["active_organization_id"] == org.pk
    assert _membership(org, invitee).role == Role.AGENT


def test_accepting_with_another_email_is_refused(org, owner_membership):
    invitation = InvitationFactory(organization=org, email="right@example.com", invited_by=owner_membership.user)
    stranger = UserFactory(email="wrong@example.com")
    with pytest.raises(PermissionDeniedError):
        services.invitation_accept(token=invitation.token, user=stranger)
    assert not Membership.objects.unscoped().filter(organization=org, user=stranger).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expired"),
        ({"revoked_at": timezone.now()}, "revoked"),
    ],
)
def test_expired_or_revoked_invitations_are_refused(org, changes, status):
    invitee = UserFactory()
    invitation = InvitationFactory(organization=org, email=invitee.email, **changes)
    with pytest.raises(ServiceError) as error:
        services.invitation_accept(token=invitation.token, user=invitee)
    assert error.value.code == status
    assert status in error.value.message
    assert not Membership.objects.unscoped().filter(organization=org, user=invitee).exists()


def test_unknown_token_is_refused(db):
    with pytest.raises(ServiceError) as error:
        services.invitation_accept(token="no-such-token", user=UserFactory())
    assert error.value.code == "not_found"


def test_reinviting_replaces_the_open_invitation(org, owner_membership):
    first = services.invitation_create(
        organization=org, email="again@example.com", role=Role.AGENT, inviter=owner_membership
    )
    second = services.invitation_create(
        organization=org, email="Again@example.com", role=Role.VIEWER, inviter=owner_membership
    )
    first.refresh_from_db()
    assert first.status == "revoked"
    assert second.status == "pending"
    open_ones = Invitation.objects.unscoped().filter(
        organization=org, accepted_at__isnull=True, revoked_at__isnull=True
    )
    assert list(open_ones) == [second]
    # The old link no longer works; the new one does.
    invitee = UserFactory(email="again@example.com")
    with pytest.raises(ServiceError):
        services.invitation_accept(token=first.token, user=invitee)
    assert services.invitation_accept(token=second.token, user=invitee).role == Role.VIEWER


def test_inviting_a_member_is_refused(org, owner_membership):
    existing = member_of(org, Role.AGENT)
    response = _client(owner_membership.user).post(
        "/api/v1/invitations/", {"email": existing.email.upper(), "role": Role.AGENT}
    )
    assert response.status_code == 400
    assert response.json()["errors"]["email"]
    assert not Invitation.objects.unscoped().filter(organization=org).exists()


def test_revoking_an_invitation_through_the_api(org, owner_membership):
    invitation = InvitationFactory(organization=org)
    client = _client(owner_membership.user)
    assert client.delete(f"/api/v1/invitations/{invitation.pk}/").status_code == 204
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    # Revoking twice is refused with a reason.
    response = client.delete(f"/api/v1/invitations/{invitation.pk}/")
    assert response.status_code == 400
    assert "revoked" in response.json()["detail"] or "revoked" in str(response.json()["errors"])


def test_membership_in_another_org_is_not_an_actor_here(db):
    """The services trust the actor passed in; the API passes the request's own membership, never another."""
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    owner_b = MembershipFactory(organization=org_b, role=Role.OWNER)
    agent_a = MembershipFactory(organization=org_a, role=Role.AGENT)
    response = _client(owner_b.user).patch(f"/api/v1/members/{agent_a.pk}/", {"role": Role.ADMIN})
    assert response.status_code == 404
    agent_a.refresh_from_db()
    assert agent_a.role == Role.AGENT


@pytest.mark.django_db
def test_organization_create_survives_a_slug_taken_meanwhile(monkeypatch):
    """The slug picked as free can be taken by a concurrent signup before we save: we take another."""
    from accounts import services
    from accounts.models import Organization

    from .factories import OrganizationFactory, UserFactory

    OrganizationFactory(slug="twin-co", name="Twin Co")
    monkeypatch.setattr(services, "_unique_slug", lambda name: "twin-co")
    organization = services.organization_create(owner=UserFactory(), name="Twin Co")
    assert organization.slug.startswith("twin-co-")
    assert Organization.objects.filter(name="Twin Co").count() == 2
