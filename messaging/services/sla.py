"""Speed to lead: each organization's first-contact target, escalations of leads not contacted in time (to the
lead's owner and a manager, once per lead), and the report of the share met by agent, source and campaign.

A lead is contacted when its first outbound message is handed to a provider, or when someone moves it out of its
first stage (``Lead.first_contacted_at``, set by whichever happens first).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership
from leads.constants import StageKind
from leads.models import Lead

from ..constants import NotificationEvent
from ..models import MessagingSettings, SlaEscalation
from .notifications import notify

# Leads older than this are never escalated (the report still counts them).
ESCALATE_WITHIN = timedelta(days=2)


def _escalation_recipients(lead: Lead) -> list:
    """The lead's owner and one manager (the earliest, else an admin, else an owner of the organization)."""
    people = [lead.owner] if lead.owner_id else []
    for role in (Role.MANAGER, Role.ADMIN, Role.OWNER):
        manager = (
            Membership.objects.unscoped()
            .filter(organization_id=lead.organization_id, role=role, user__is_active=True)
            .exclude(user_id=lead.owner_id)
            .select_related("user")
            .order_by("pk")
            .first()
        )
        if manager is not None:
            people.append(manager.user)
            break
    return people


def sla_escalate_breaches(*, now: datetime | None = None, limit: int = 500) -> int:
    """Escalate every lead whose target passed with no first contact; returns how many were escalated."""
    now = now or timezone.now()
    escalated = 0
    for row in (
        MessagingSettings.objects.unscoped()
        .filter(sla_escalation_enabled=True, organization__is_active=True)
        .select_related("organization")
    ):
        target = timedelta(minutes=row.first_contact_target_minutes)
        overdue = (
            Lead.objects.unscoped()
            .filter(
                organization_id=row.organization_id,
                first_contacted_at__isnull=True,
                duplicate_of__isnull=True,
                stage__kind=StageKind.OPEN,
                received_at__lte=now - target,
                received_at__gte=now - ESCALATE_WITHIN,
            )
            .exclude(
                pk__in=SlaEscalation.objects.unscoped().filter(organization_id=row.organization_id).values("lead_id")
            )
            .select_related("owner", "stage")
            .order_by("received_at")[:limit]
        )
        for lead in overdue:
            lead.organization = row.organization
            recipients = _escalation_recipients(lead)
            try:
                with transaction.atomic():
                    SlaEscalation.objects.unscoped().create(
                        organization_id=row.organization_id,
                        lead=lead,
                        target_minutes=row.first_contact_target_minutes,
                        escalated_at=now,
                        notified_user_ids=[u.pk for u in recipients],
                    )
                    minutes = int((now - lead.received_at).total_seconds() // 60)
                    notify(
                        organization=row.organization,
                        users=recipients,
                        event=NotificationEvent.SLA_BREACHED,
                        title=f"Not contacted in {row.first_contact_target_minutes} min: {lead.display_name}",
                        body=f"Waiting {minutes} minutes · {lead.get_source_display()}"
                        + (f" · owner {lead.owner.display_name}" if lead.owner_id else " · unassigned"),
                        url=f"/leads/{lead.pk}/",
                        data={"lead_id": lead.pk},
                        dedupe_key=f"sla:{lead.pk}",
                    )
            except IntegrityError:
                continue  # escalated by a concurrent run
            escalated += 1
    return escalated


@dataclass
class SlaBucket:
    label: str
    leads: int = 0
    met: int = 0
    contacted: int = 0
    minutes: list[float] = field(default_factory=list)

    @property
    def share_met(self) -> float | None:
        return round(100 * self.met / self.leads, 1) if self.leads else None

    @property
    def median_minutes(self) -> float | None:
        if not self.minutes:
            return None
        ordered = sorted(self.minutes)
        middle = len(ordered) // 2
        value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        return round(value, 1)


@dataclass
class SlaReport:
    target_minutes: int
    since: datetime
    total: SlaBucket
    by_agent: list[SlaBucket]
    by_source: list[SlaBucket]
    by_campaign: list[SlaBucket]


def sla_report(*, organization, days: int = 30, now: datetime | None = None) -> SlaReport:
    """The share of leads of the last ``days`` first contacted within the target, by agent, source and campaign."""
    from campaigns.models import LeadDistribution

    now = now or timezone.now()
    since = now - timedelta(days=days)
    row = MessagingSettings.objects.unscoped().filter(organization_id=organization.pk).first()
    target_minutes = row.first_contact_target_minutes if row else 5
    target = timedelta(minutes=target_minutes)
    leads = list(
        Lead.objects.unscoped()
        .filter(organization_id=organization.pk, received_at__gte=since, duplicate_of__isnull=True)
        .select_related("owner")
        .only(
            "id", "source", "received_at", "first_contacted_at", "owner__first_name", "owner__last_name", "owner__email"
        )
    )
    campaigns = defaultdict(set)
    for lead_id, name in (
        LeadDistribution.objects.unscoped()
        .filter(organization_id=organization.pk, lead_id__in=[lead.pk for lead in leads])
        .values_list("lead_id", "campaign__name")
    ):
        campaigns[lead_id].add(name)
    total = SlaBucket("All leads")
    buckets: dict[str, dict[str, SlaBucket]] = {"agent": {}, "source": {}, "campaign": {}}

    def add(bucket: SlaBucket, lead: Lead) -> None:
        bucket.leads += 1
        if lead.first_contacted_at is not None:
            waited = lead.first_contacted_at - lead.received_at
            bucket.contacted += 1
            bucket.minutes.append(waited.total_seconds() / 60)
            bucket.met += waited <= target
        # Not contacted yet: missed once the target has passed (still pending otherwise, counted as not met).

    for lead in leads:
        add(total, lead)
        agent = lead.owner.display_name if lead.owner_id else "Unassigned"
        groups = {
            "agent": [agent],
            "source": [lead.get_source_display()],
            "campaign": sorted(campaigns.get(lead.pk) or ["No campaign"]),
        }
        for kind, labels in groups.items():
            for label in labels:
                add(buckets[kind].setdefault(label, SlaBucket(label)), lead)

    def ordered(kind: str) -> list[SlaBucket]:
        return sorted(buckets[kind].values(), key=lambda b: (-b.leads, b.label))

    return SlaReport(target_minutes, since, total, ordered("agent"), ordered("source"), ordered("campaign"))
