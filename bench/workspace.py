"""The benchmark database and its tenants: a lead-heavy agency (the one measured) and a yardstick organization."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql


@dataclass
class Workspace:
    organization_id: int
    stage_ids: list[int]
    owner_ids: list[int]
    read_keys: list[str]
    ingest_keys: list[str]
    minimal_organization_id: int
    minimal_keys: list[str]


def database_recreate(*, admin_dsn: str, name: str) -> None:
    if not name.endswith("_bench"):
        raise RuntimeError(f"refusing to drop “{name}”: the benchmark only recreates databases named *_bench")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def workspace_create(*, read_keys: int, ingest_keys: int, welcome: bool = False) -> Workspace:
    """Through the real services: organization_create (trial of the unlimited plan), members, api_key_create.

    Every new organization starts with the "instant welcome" automation, which messages each new lead. It is turned
    off here unless ``welcome`` (as an owner would on the Automations page): these benchmarks measure intake,
    lists and webhooks, and a WhatsApp to every one of a million leads is what ``make bench-messaging`` measures.
    """
    from accounts.constants import ApiKeyScope, Role
    from accounts.models import Membership, User
    from accounts.services import api_key_create, organization_create
    from billing.models import Plan
    from billing.services import plans_seed
    from leadflow.tenancy.context import organization_scope
    from leads.models import PipelineStage

    plans_seed()
    agency = Plan.objects.get(code="agency")  # unlimited leads: a million-lead tenant is not on a capped plan

    def user(email: str, first: str, last: str) -> User:
        person = User(email=email, first_name=first, last_name=last)
        person.set_unusable_password()  # nobody signs in: the API is used with keys
        person.save()
        return person

    owner = user("owner@bench.leadflow.local", "Olivia", "Owner")
    organization = organization_create(
        owner=owner,
        name="Bench Realty",
        plan=agency,
        country="IN",
        timezone="Asia/Kolkata",
        default_phone_region="IN",
        industry="real_estate",
    )
    team = [("manager", Role.MANAGER, 2), ("agent", Role.AGENT, 6)]
    owner_ids = [owner.pk]
    with organization_scope(organization):
        for word, role, count in team:
            for n in range(1, count + 1):
                member = user(f"{word}{n}@bench.leadflow.local", word.title(), str(n))
                Membership.objects.create(organization=organization, user=member, role=role)
                owner_ids.append(member.pk)
        stage_ids = list(PipelineStage.objects.order_by("position", "id").values_list("id", flat=True))

    def keys(org, scope: str, count: int) -> list[str]:
        return [api_key_create(organization=org, name=f"bench {scope} {n}", scopes=[scope])[1] for n in range(count)]

    if not welcome:
        from messaging.models import AutomationRule

        AutomationRule.objects.unscoped().filter(organization=organization).update(is_active=False)
    yardstick_owner = user("yardstick@bench.leadflow.local", "Yara", "Stick")
    yardstick = organization_create(owner=yardstick_owner, name="Bench Yardstick", plan=agency)
    return Workspace(
        organization_id=organization.pk,
        stage_ids=stage_ids,
        owner_ids=owner_ids,
        read_keys=keys(organization, ApiKeyScope.READ, read_keys),
        ingest_keys=keys(organization, ApiKeyScope.INGEST, ingest_keys),
        minimal_organization_id=yardstick.pk,
        minimal_keys=keys(yardstick, ApiKeyScope.INGEST, ingest_keys),
    )


def member_session_cookie(*, organization_id: int, role: str) -> str:
    """The ``Cookie`` header of a browser signed in as the first member with ``role`` of the organization, on it:
    a real session row, as signing in makes (the websocket authenticates it like any page)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import Membership
    from leadflow.tenancy.middleware import SESSION_KEY as ORGANIZATION_KEY

    member = (
        Membership.objects.unscoped()
        .filter(organization_id=organization_id, role=role)
        .select_related("user")
        .order_by("id")
        .first()
        .user
    )
    session = SessionStore()
    session[SESSION_KEY] = str(member.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = member.get_session_auth_hash()
    session[ORGANIZATION_KEY] = organization_id
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
