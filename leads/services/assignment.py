"""Automatic assignment: round robin or least loaded among the agents who take leads, with a capacity each.

When every eligible agent is at capacity a lead stays unassigned; ``assignment_drain_queue`` hands out the queue,
oldest first, whenever capacity frees (a lead closes, is reassigned or deleted, a capacity is raised) and every
few minutes from beat.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership
from accounts.services import audit_record
from leadflow.exceptions import PermissionDeniedError, ServiceError
from leadflow.tenancy.context import organization_scope

from ..constants import AssignmentStrategy, StageKind
from ..models import AssignmentRule, Lead

ASSIGNABLE_ROLES = (Role.OWNER, Role.ADMIN, Role.MANAGER, Role.AGENT)


def _lock_organization_assignment(organization) -> None:
    """One assigner at a time per organization: the round-robin order and the capacities stay exact."""
    key = int.from_bytes(
        hashlib.blake2b(f"assign:{organization.pk}".encode(), digest_size=8).digest(), "big", signed=True
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def open_lead_counts(user_ids) -> dict[int, int]:
    rows = (
        Lead.objects.filter(owner_id__in=list(user_ids), stage__kind=StageKind.OPEN, duplicate_of__isnull=True)
        .values("owner_id")
        .annotate(n=Count("id"))
    )
    return {row["owner_id"]: row["n"] for row in rows}


def _candidates(lead: Lead, rules: list[AssignmentRule]) -> list[Membership]:
    memberships = Membership.objects.filter(
        receives_leads=True, role__in=ASSIGNABLE_ROLES, user__is_active=True
    ).select_related("user")
    for rule in rules:
        if rule.matches(lead):
            allowed = {agent.pk for agent in rule.agents.all()}
            return [m for m in memberships if m.user_id in allowed]
    return list(memberships)


def pick_agent(
    lead: Lead, *, strategy: str, rules: list[AssignmentRule], loads: dict[int, int] | None = None
) -> Membership | None:
    candidates = _candidates(lead, rules)
    if not candidates:
        return None
    loads = loads if loads is not None else open_lead_counts(m.user_id for m in candidates)
    eligible = [m for m in candidates if not m.lead_capacity or loads.get(m.user_id, 0) < m.lead_capacity]
    if not eligible:
        return None
    never = datetime.min.replace(tzinfo=UTC)
    if strategy == AssignmentStrategy.LEAST_LOADED:
        return min(eligible, key=lambda m: (loads.get(m.user_id, 0), m.last_assigned_at or never, m.pk))
    return min(eligible, key=lambda m: (m.last_assigned_at or never, m.pk))


def _give(lead: Lead, membership: Membership) -> None:
    from .leads import lead_assign

    now = timezone.now()
    Membership.objects.filter(pk=membership.pk).update(last_assigned_at=now)
    membership.last_assigned_at = now
    lead_assign(lead=lead, owner=membership.user, actor=None, automatic=True)


def assign_new_lead(lead: Lead) -> Membership | None:
    """Assign a just-created lead by the organization's strategy; ``None`` leaves it in the queue."""
    organization = lead.organization
    if organization.assignment_strategy == AssignmentStrategy.MANUAL or lead.owner_id or lead.duplicate_of_id:
        return None  # decided without touching the database
    return _assign_new_lead(lead, organization)


@transaction.atomic
def _assign_new_lead(lead: Lead, organization) -> Membership | None:
    _lock_organization_assignment(organization)
    rules = list(AssignmentRule.objects.filter(is_active=True).prefetch_related("agents"))
    membership = pick_agent(lead, strategy=organization.assignment_strategy, rules=rules)
    if membership is not None:
        _give(lead, membership)
    return membership


def assignment_drain_queue(organization, *, limit: int = 500) -> int:
    """Assign waiting leads, oldest first, while some agent has room. Returns how many were assigned."""
    if organization.assignment_strategy == AssignmentStrategy.MANUAL:
        return 0
    assigned = 0
    with organization_scope(organization), transaction.atomic():
        _lock_organization_assignment(organization)
        rules = list(AssignmentRule.objects.filter(is_active=True).prefetch_related("agents"))
        all_members = Membership.objects.filter(receives_leads=True, role__in=ASSIGNABLE_ROLES)
        loads = open_lead_counts(m.user_id for m in all_members)
        queue = (
            Lead.objects.filter(owner__isnull=True, duplicate_of__isnull=True, stage__kind=StageKind.OPEN)
            .select_related("stage", "organization")
            .order_by("received_at", "id")[:limit]
        )
        for lead in queue:
            membership = pick_agent(lead, strategy=organization.assignment_strategy, rules=rules, loads=loads)
            if membership is None:
                if not rules:
                    break  # nobody has room, and no rule could route a later lead elsewhere
                continue
            _give(lead, membership)
            loads[membership.user_id] = loads.get(membership.user_id, 0) + 1
            assigned += 1
    return assigned


@transaction.atomic
def agent_set_lead_settings(
    *, membership: Membership, actor, receives_leads: bool, lead_capacity: int, request=None
) -> Membership:
    """Whether a member takes new leads, and how many open ones at most; room made is handed out right away."""
    from ..tasks import drain_assignment_queue

    if actor is not None and not actor.has_role(Role.ADMIN):
        raise PermissionDeniedError("Only admins and owners change who takes leads.", field="lead_capacity")
    if lead_capacity < 0:
        raise ServiceError("Capacity cannot be negative (0 means no limit).", field="lead_capacity")
    changes = {}
    for name, value in (("receives_leads", receives_leads), ("lead_capacity", lead_capacity)):
        if getattr(membership, name) != value:
            changes[name] = [getattr(membership, name), value]
            setattr(membership, name, value)
    if changes:
        membership.save(update_fields=list(changes))
        audit_record(
            organization=membership.organization,
            action="membership.lead_settings_changed",
            actor=actor.user if actor else None,
            target=membership,
            changes={**changes, "user": membership.user.email},
            request=request,
        )
        organization = membership.organization
        transaction.on_commit(lambda: drain_assignment_queue.delay(organization.pk))
    return membership
