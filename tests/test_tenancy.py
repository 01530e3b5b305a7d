"""Tenancy: the fail-closed manager, a meta-test over every tenant model, and a walk over every API route.

The walk finds every router viewset under /api/v1/ whose ``queryset`` is a tenant manager, creates one row in
organization A through ``tests.factories.TENANT_FACTORIES`` and proves that an owner and an all-scopes API key of
organization B can neither see nor touch it. New apps' viewsets are covered without touching this file; a model
without a factory fails with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse
from rest_framework import permissions
from rest_framework.test import APIClient

from accounts.constants import ROLE_RANK, ApiKeyScope, Role
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization
from billing.models import Subscription
from leadflow.tenancy.context import (
    ALL_ORGANIZATIONS,
    OrganizationScopeMissing,
    get_scope,
    operator_scope,
    organization_scope,
)
from leadflow.tenancy.models import TenantManager

from .conftest import member_of
from .factories import (
    TENANT_FACTORIES,
    ApiKeyFactory,
    InvitationFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    make_api_key,
)

PROJECT_APPS = tuple(settings.LEADFLOW_DOMAIN_APPS)


# The manager ------------------------------------------------------------------------------------------------------


@pytest.fixture
def two_orgs(db):
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    invitations = {
        org_a: InvitationFactory.create_batch(2, organization=org_a),
        org_b: InvitationFactory.create_batch(3, organization=org_b),
    }
    return org_a, org_b, invitations


@pytest.mark.parametrize(
    "evaluate",
    [
        pytest.param(list, id="list"),
        pytest.param(lambda qs: qs.count(), id="count"),
        pytest.param(lambda qs: qs.exists(), id="exists"),
        pytest.param(lambda qs: qs.first(), id="first"),
        pytest.param(lambda qs: qs.aggregate(n=models.Count("id")), id="aggregate"),
        pytest.param(lambda qs: list(qs.iterator()), id="iterator"),
        pytest.param(lambda qs: qs.aiterator(), id="aiterator"),
        pytest.param(lambda qs: qs.update(role=Role.VIEWER), id="update"),
        pytest.param(lambda qs: qs.delete(), id="delete"),
        pytest.param(lambda qs: list(qs.filter(role=Role.AGENT).values_list("id", flat=True)), id="chained"),
    ],
)
def test_unscoped_queries_raise(two_orgs, evaluate):
    assert get_scope() is None
    with pytest.raises(OrganizationScopeMissing):
        evaluate(Invitation.objects.all())
    # Nothing was updated or deleted on the way.
    assert Invitation.objects.unscoped().filter(role=Role.AGENT).count() == 5


def test_unscoped_get_raises(two_orgs):
    org_a, _, invitations = two_orgs
    with pytest.raises(OrganizationScopeMissing):
        Invitation.objects.get(pk=invitations[org_a][0].pk)
    with pytest.raises(OrganizationScopeMissing):
        Invitation.objects.filter(pk=invitations[org_a][0].pk).get()


def test_scoped_to_a_returns_only_a(two_orgs):
    org_a, org_b, invitations = two_orgs
    with organization_scope(org_a):
        assert get_scope() == org_a
        assert set(Invitation.objects.values_list("pk", flat=True)) == {i.pk for i in invitations[org_a]}
        assert Invitation.objects.count() == 2
        # B's row cannot be fetched by primary key, updated or deleted from A's scope.
        b_pk = invitations[org_b][0].pk
        assert not Invitation.objects.filter(pk=b_pk).exists()
        with pytest.raises(Invitation.DoesNotExist):
            Invitation.objects.get(pk=b_pk)
        assert Invitation.objects.filter(pk=b_pk).update(role=Role.ADMIN) == 0
        assert Invitation.objects.filter(pk=b_pk).delete()[0] == 0
    with organization_scope(org_b):
        assert Invitation.objects.count() == 3
    # The scope is reset when the block ends.
    assert get_scope() is None
    assert Invitation.objects.unscoped().get(pk=invitations[org_b][0].pk).role == Role.AGENT


def test_unscoped_and_operator_scope_see_everything(two_orgs):
    assert Invitation.objects.unscoped().count() == 5
    with operator_scope():
        assert get_scope() is ALL_ORGANIZATIONS
        assert Invitation.objects.count() == 5
    assert get_scope() is None


def test_guarded_queryset_as_subquery_matches_nothing(two_orgs):
    org_a, _, _ = two_orgs
    MembershipFactory(organization=org_a)
    # With no scope, the guarded queryset inside a non-tenant query matches no row (and does not raise).
    orgs = Organization.objects.filter(pk__in=Membership.objects.values("organization_id"))
    assert list(orgs) == []
    assert not Organization.objects.filter(
        models.Exists(Membership.objects.filter(organization=models.OuterRef("pk")))
    ).exists()
    # In scope, the same subquery finds A.
    with organization_scope(org_a):
        assert list(Organization.objects.filter(pk__in=Membership.objects.values("organization_id"))) == [org_a]


def test_create_fills_organization_from_scope(two_orgs):
    org_a, _, _ = two_orgs
    fields = {"email": "new@example.com", "token": "tok-create", "expires_at": "2099-01-01T00:00:00Z"}
    with pytest.raises(OrganizationScopeMissing):
        Invitation.objects.create(**fields)
    with operator_scope(), pytest.raises(OrganizationScopeMissing):
        Invitation.objects.create(**fields)
    with organization_scope(org_a):
        invitation = Invitation.objects.create(**fields)
    assert invitation.organization_id == org_a.pk


def test_get_or_create_and_bulk_create_fill_organization_from_scope(two_orgs):
    org_a, org_b, _ = two_orgs
    user = UserFactory()
    with organization_scope(org_a):
        membership, created = Membership.objects.get_or_create(user=user, defaults={"role": Role.VIEWER})
        again, created_again = Membership.objects.get_or_create(user=user)
        Invitation.objects.bulk_create(
            [Invitation(email="bulk@example.com", token="tok-bulk", expires_at="2099-01-01T00:00:00Z")]
        )
    assert created and not created_again and again.pk == membership.pk
    assert membership.organization_id == org_a.pk
    assert Invitation.objects.unscoped().get(token="tok-bulk").organization_id == org_a.pk
    # The lookup is scoped too: the same user in B is a different membership.
    with organization_scope(org_b):
        in_b, created_in_b = Membership.objects.get_or_create(user=user)
    assert created_in_b and in_b.organization_id == org_b.pk


# Every tenant model ---------------------------------------------------------------------------------------------------


def tenant_models() -> list[type[models.Model]]:
    found = []
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            try:
                field = model._meta.get_field("organization")
            except Exception:  # noqa: S112 - no such field: not tenant-owned
                continue
            if isinstance(field, models.ForeignKey) and field.related_model is Organization:
                found.append(model)
    return found


def test_every_model_with_an_organization_uses_the_tenant_manager():
    found = tenant_models()
    # The meta-test must see today's tenant models, or it proves nothing.
    assert {Membership, Invitation, ApiKey, AuditEvent, Subscription} <= set(found)
    offenders = [m._meta.label for m in found if not isinstance(m._default_manager, TenantManager)]
    assert offenders == [], (
        f"these models have an `organization` but their default manager is not TenantManager: {offenders}"
    )


# The tenancy walk over the API ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiRoute:
    name: str
    path: str
    viewset: type
    actions: tuple[tuple[str, str], ...]
    detail: bool

    @property
    def model(self):
        return self.viewset.queryset.model

    def __str__(self) -> str:
        return self.name


def _walk(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_routes() -> list[ApiRoute]:
    """Every router route under /api/v1/ whose viewset reads a tenant manager (format-suffix twins dropped)."""
    routes: dict[str, ApiRoute] = {}
    for path, pattern in _walk(get_resolver()):
        if not path.startswith("api/v1/"):
            continue
        callback = pattern.callback
        viewset = getattr(callback, "cls", None)
        actions = getattr(callback, "actions", None)
        if viewset is None or not actions or not isinstance(getattr(viewset, "queryset", None), TenantManager):
            continue
        if pattern.name in routes:
            continue
        detail = getattr(callback, "initkwargs", {}).get("detail")
        if detail is None:
            detail = "(?P<pk>" in path or "<pk>" in path
        routes[pattern.name] = ApiRoute(pattern.name, path, viewset, tuple(sorted(actions.items())), bool(detail))
    return list(routes.values())


API_ROUTES = api_routes()
PRINCIPALS = ("owner", "api_key")


def test_walk_finds_the_known_routes():
    names = {route.name for route in API_ROUTES}
    assert {
        "member-list",
        "member-detail",
        "invitation-list",
        "invitation-detail",
        "api-key-list",
        "api-key-detail",
        "audit-event-list",
        "audit-event-detail",
        "invoice-list",
        "invoice-detail",
        "invoice-pdf",
        "wallet-top-up-list",
        "wallet-top-up-detail",
    } <= names


def _factory_for(model):
    factory = TENANT_FACTORIES.get(model)
    if factory is None:
        pytest.fail(
            f"{model._meta.label} is served under /api/v1/ but has no factory in tests.factories.TENANT_FACTORIES: "
            "register one so the tenancy walk can create another organization's rows"
        )
    return factory


def _snapshot(obj) -> dict:
    fresh = type(obj)._default_manager.unscoped().filter(pk=obj.pk).first()
    assert fresh is not None, f"{type(obj).__name__} {obj.pk} of organization A was deleted"
    return {field.attname: getattr(fresh, field.attname) for field in type(obj)._meta.concrete_fields}


def _client_for(principal: str, organization) -> APIClient:
    client = APIClient()
    if principal == "owner":
        client.force_authenticate(user=member_of(organization, Role.OWNER))
    else:
        _, raw_key = make_api_key(organization, scopes=ApiKeyScope.values, name="walk")
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def _refused(route: ApiRoute, action: str, method: str, principal: str) -> bool:
    """Whether the viewset's declared roles/scopes refuse this principal outright (then 403 is the right answer)."""
    view = route.viewset()
    view.action = action
    is_read = method.upper() in permissions.SAFE_METHODS
    if principal == "api_key":
        return view.required_api_key_scope(is_read) is None
    return ROLE_RANK[Role.OWNER] < ROLE_RANK[Role(view.required_role(is_read))]


def _allowed_statuses(route: ApiRoute, action: str, method: str, principal: str, hidden: int) -> set[int]:
    if _refused(route, action, method, principal):
        return {403}
    # Extra permission classes (plan features, …) may refuse on their own; they must still never answer 2xx.
    return {hidden, 403} if getattr(route.viewset, "extra_permission_classes", ()) else {hidden}


def _markers(obj) -> list[str]:
    """Distinctive values of a row (emails, tags) to look for in reports that list no ids."""
    markers = [value for name in ("email",) if isinstance(value := getattr(obj, name, None), str) and value]
    return markers + list(getattr(obj, "tags", None) or [])


def _ids(response) -> set:
    data = response.json()
    if isinstance(data, dict) and "results" in data:
        assert data.get("next") is None, "the walk's list does not fit on one page"
        data = data["results"]
    return {item.get("id") for item in data}


def _url(route: ApiRoute, pk=None) -> str:
    kwargs = {}
    if route.detail:
        kwargs[route.viewset.lookup_url_kwarg or route.viewset.lookup_field] = pk
    try:
        return reverse(route.name, kwargs=kwargs)
    except NoReverseMatch as error:
        pytest.fail(f"the tenancy walk cannot build a URL for {route.name} ({route.path}); extend _url(): {error}")


@pytest.mark.django_db
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("route", API_ROUTES, ids=str)
def test_tenancy_walk(route: ApiRoute, principal: str):
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    factory = _factory_for(route.model)
    theirs = factory(organization=org_a)
    ours = factory(organization=org_b)
    before = _snapshot(theirs)
    client = _client_for(principal, org_b)
    checked = 0

    if not route.detail and not any(method == "get" for method, _ in route.actions):
        pytest.skip(f"{route.name} only creates: the caller's own organization is the only one it can write to")
    for method, action in route.actions:
        if not route.detail and method == "get" and action != "list":
            # Collection reports (CSV export, tag lists): none of A's values may appear, and B's must.
            response = client.get(_url(route))
            checked += 1
            if _refused(route, action, method, principal):
                assert response.status_code == 403, (route.name, principal, response.content)
                continue
            assert response.status_code == 200, (route.name, principal, response.content)
            content = b"".join(response.streaming_content) if response.streaming else response.content
            text = content.decode()
            assert not any(marker in text for marker in _markers(theirs)), (
                f"{route.name} as {principal} of B shows A's data"
            )
            if action in getattr(route.viewset, "summary_actions", ()):
                continue  # figures, not rows (their own tests prove they count one organization)
            assert any(marker in text for marker in _markers(ours)), (
                f"{route.name} shows none of B's own data: the walk proves nothing"
            )
            continue
        if not route.detail:
            if method != "get" or action != "list":
                continue  # creating or custom collection actions: nothing of A's to aim at
            response = client.get(_url(route), {"page_size": 500})
            checked += 1
            if _refused(route, action, method, principal):
                assert response.status_code == 403, (route.name, principal, response.content)
                continue
            assert response.status_code == 200, (route.name, principal, response.content)
            ids = _ids(response)
            assert theirs.pk not in ids, f"{route.name} as {principal} of B lists A's {route.model.__name__}"
            assert ours.pk in ids, (
                f"{route.name} as {principal} of B does not list B's own row: the walk proves nothing"
            )
            continue

        send = getattr(client, method)
        body = {} if method in ("put", "patch", "post") else None
        response = send(_url(route, theirs.pk), body) if body is not None else send(_url(route, theirs.pk))
        checked += 1
        expected = _allowed_statuses(route, action, method, principal, hidden=404)
        assert response.status_code in expected, (
            f"{method.upper()} {route.name} ({action}) of A's row as {principal} of B answered "
            f"{response.status_code}, expected {sorted(expected)}: {response.content[:300]!r}"
        )
        if method == "get" and not _refused(route, action, method, principal):
            # The same principal reads its own organization's row: the 404 above is about tenancy, not the route.
            own = client.get(_url(route, ours.pk))
            assert own.status_code == 200, (route.name, principal, own.content)
            body = own.json() if own["Content-Type"].startswith("application/json") else None
            if isinstance(body, dict) and "id" in body:  # the object itself (actions may answer lists or CSV)
                assert body["id"] == ours.pk

    assert checked, f"the walk checked nothing on {route.name}"
    assert _snapshot(theirs) == before, f"A's {route.model.__name__} changed through {route.name} as {principal} of B"


# Non-router API views -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_organization_endpoint_is_the_callers_own():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    client = APIClient()
    user_b = member_of(org_b, Role.OWNER)
    client.force_authenticate(user=user_b)

    response = client.get("/api/v1/organization/")
    assert response.status_code == 200
    assert response.json()["id"] == org_b.pk

    response = client.get("/api/v1/organization/", HTTP_X_ORGANIZATION=org_a.slug)
    assert response.status_code == 403
    assert response.json()["type"] == "permission_denied"

    # A PATCH aimed at A through the header changes nothing in A.
    response = client.patch("/api/v1/organization/", {"name": "Hijacked"}, HTTP_X_ORGANIZATION=org_a.slug)
    assert response.status_code == 403
    org_a.refresh_from_db()
    assert org_a.name != "Hijacked"

    me = client.get("/api/v1/me/").json()
    assert [o["id"] for o in me["organizations"]] == [org_b.pk]

    # An API key of B reads B.
    _, raw_key = make_api_key(org_b, scopes=["read"])
    key_client = APIClient()
    response = key_client.get("/api/v1/organization/", HTTP_X_API_KEY=raw_key, HTTP_X_ORGANIZATION=org_a.slug)
    assert response.status_code == 200
    assert response.json()["id"] == org_b.pk


@pytest.mark.django_db
def test_member_of_both_picks_with_the_header():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    user = member_of(org_b, Role.VIEWER)
    MembershipFactory(organization=org_a, user=user, role=Role.ADMIN)
    client = APIClient()
    client.force_authenticate(user=user)
    assert client.get("/api/v1/organization/").json()["id"] == org_b.pk
    picked = client.get("/api/v1/organization/", HTTP_X_ORGANIZATION=org_a.slug).json()
    assert (picked["id"], picked["role"]) == (org_a.pk, Role.ADMIN)


# Pages ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def page_orgs(db, client):
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    owner_b = member_of(org_b, Role.OWNER)
    client.force_login(owner_b)
    return org_a, org_b, owner_b


def test_pages_answer_404_for_another_organizations_members(client, page_orgs):
    org_a, org_b, _ = page_orgs
    theirs = MembershipFactory(organization=org_a, role=Role.AGENT)
    ours = MembershipFactory(organization=org_b, role=Role.AGENT)

    assert client.post(f"/settings/team/members/{theirs.pk}/role/", {"role": Role.VIEWER}).status_code == 404
    assert client.post(f"/settings/team/members/{theirs.pk}/remove/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == Role.AGENT

    # The same requests on B's own member work, so the 404s above are about tenancy.
    assert client.post(f"/settings/team/members/{ours.pk}/role/", {"role": Role.VIEWER}).status_code == 302
    ours.refresh_from_db()
    assert ours.role == Role.VIEWER
    assert client.post(f"/settings/team/members/{ours.pk}/remove/").status_code == 302
    assert not Membership.objects.unscoped().filter(pk=ours.pk).exists()
    assert Membership.objects.unscoped().filter(pk=theirs.pk).exists()


def test_pages_answer_404_for_another_organizations_invitations_and_keys(client, page_orgs):
    org_a, org_b, _ = page_orgs
    their_invitation = InvitationFactory(organization=org_a)
    their_key = ApiKeyFactory(organization=org_a)
    our_invitation = InvitationFactory(organization=org_b)
    our_key = ApiKeyFactory(organization=org_b)

    assert client.post(f"/settings/team/invitations/{their_invitation.pk}/revoke/").status_code == 404
    assert client.post(f"/settings/api-keys/{their_key.pk}/revoke/").status_code == 404
    their_invitation.refresh_from_db()
    their_key.refresh_from_db()
    assert their_invitation.revoked_at is None
    assert their_key.revoked_at is None

    assert client.post(f"/settings/team/invitations/{our_invitation.pk}/revoke/").status_code == 302
    assert client.post(f"/settings/api-keys/{our_key.pk}/revoke/").status_code == 302
    our_invitation.refresh_from_db()
    our_key.refresh_from_db()
    assert our_invitation.revoked_at is not None
    assert our_key.revoked_at is not None


def test_switching_to_an_organization_you_are_not_in_is_404(client, page_orgs):
    org_a, org_b, owner_b = page_orgs
    assert client.post(f"/organizations/{org_a.pk}/switch/").status_code == 404
    owner_b.refresh_from_db()
    assert owner_b.active_organization_id == org_b.pk
    assert client.session.get("active_organization_id") != org_a.pk

    # Switching to an organization you are in works.
    third = OrganizationFactory()
    MembershipFactory(organization=third, user=owner_b, role=Role.VIEWER)
    assert client.post(f"/organizations/{third.pk}/switch/").status_code == 302
    owner_b.refresh_from_db()
    assert owner_b.active_organization_id == third.pk
    assert client.session["active_organization_id"] == third.pk
