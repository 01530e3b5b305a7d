"""The plan's monthly lead quota: counted per month in the organization's time zone. Over quota a lead is still
stored and worked — it is flagged, and the owners are alerted once a month."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership
from billing.models import Subscription
from leadflow.caching import ProcessCache
from leadflow.realtime import publish

from ..constants import ActivityKind
from ..models import Lead, MonthlyLeadUsage
from .activity import activity_record


def month_start(organization, at=None):
    local = timezone.localtime(at or timezone.now(), ZoneInfo(organization.timezone))
    return local.date().replace(day=1)


# Read for every batch of new leads: a plan change reaches the other processes within a few seconds.
_quota_cache: ProcessCache[int] = ProcessCache(seconds=10)


def monthly_quota(organization) -> int:
    """Leads per month the plan allows; 0 means unlimited (or no plan yet)."""

    def load() -> int:
        subscription = Subscription.objects.unscoped().filter(organization_id=organization.pk).select_related("plan")
        subscription = subscription.first()
        return subscription.plan.monthly_lead_quota if subscription else 0

    return _quota_cache.get(organization.pk, load)


def quota_forget(organization_id: int | None = None) -> None:
    _quota_cache.forget(organization_id)


def quota_count_leads(leads: list[Lead]) -> None:
    """Count accepted leads (of one organization) against their month's quota, one upsert per month; leads past
    the quota are flagged and the owners alerted once that month."""
    if not leads:
        return
    organization = leads[0].organization
    by_month: dict = {}
    for lead in sorted(leads, key=lambda lead: (lead.received_at, lead.pk)):
        by_month.setdefault(month_start(organization, lead.received_at), []).append(lead)
    quota = None
    for month, month_leads in by_month.items():
        with connection.cursor() as cursor:
            cursor.execute(
                # One statement, no read-modify-write race between concurrent workers.
                """
                INSERT INTO leads_monthlyleadusage (organization_id, month, lead_count)
                VALUES (%s, %s, %s)
                ON CONFLICT (organization_id, month)
                DO UPDATE SET lead_count = leads_monthlyleadusage.lead_count + EXCLUDED.lead_count
                RETURNING lead_count
                """,
                [organization.pk, month, len(month_leads)],
            )
            total = cursor.fetchone()[0]
        quota = monthly_quota(organization) if quota is None else quota
        first_number = total - len(month_leads) + 1
        over = [
            (number, lead) for number, lead in enumerate(month_leads, start=first_number) if quota and number > quota
        ]
        if not over:
            continue
        Lead.objects.filter(pk__in=[lead.pk for _, lead in over]).update(over_quota=True)
        for number, lead in over:
            lead.over_quota = True
            activity_record(
                lead=lead,
                kind=ActivityKind.QUOTA,
                message=f"Lead {number} of a {quota}-lead monthly plan: stored and flagged",
            )
        alerted = MonthlyLeadUsage.objects.filter(
            organization=organization, month=month, over_quota_alerted_at__isnull=True
        ).update(over_quota_alerted_at=timezone.now())
        if alerted:
            _alert_owners(organization, quota=quota, month=month)


def _alert_owners(organization, *, quota: int, month) -> None:
    from ..tasks import send_quota_alert

    publish(organization, "quota.exceeded", {"quota": quota, "month": month.isoformat()})
    owners = list(Membership.objects.filter(role__in=[Role.OWNER, Role.ADMIN]).values_list("user_id", flat=True))
    from django.db import transaction

    transaction.on_commit(lambda: send_quota_alert.delay(organization.pk, owners, quota, month.isoformat()))


def usage_this_month(organization) -> dict:
    month = month_start(organization)
    usage = MonthlyLeadUsage.objects.filter(month=month).first()
    count = usage.lead_count if usage else 0
    quota = monthly_quota(organization)
    return {
        "month": month,
        "count": count,
        "quota": quota,
        "percent": min(100, round(100 * count / quota)) if quota else 0,
        "over": bool(quota and count > quota),
    }
