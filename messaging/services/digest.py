"""The daily summary: yesterday's leads, conversations and speed to lead, emailed to every member who wants it,
at ``NOTIFICATION_DIGEST_HOUR`` in their organization's time zone (once a day: the notice's dedupe key)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from accounts.models import Membership, Organization
from leads.models import Lead

from ..constants import Direction, NotificationEvent
from ..models import Message
from .notifications import notify


def daily_summary_text(organization, *, start: datetime, end: datetime) -> tuple[str, str]:
    leads = Lead.objects.unscoped().filter(
        organization_id=organization.pk, received_at__gte=start, received_at__lt=end, duplicate_of__isnull=True
    )
    total = leads.count()
    contacted = leads.filter(first_contacted_at__isnull=False).count()
    messages = Message.objects.unscoped().filter(
        organization_id=organization.pk, created_at__gte=start, created_at__lt=end
    )
    received = messages.filter(direction=Direction.INBOUND).count()
    sent = messages.filter(direction=Direction.OUTBOUND).count()
    title = f"{organization.name}: {total} new leads yesterday"
    body = f"New leads: {total} (contacted: {contacted})\nMessages received: {received}\nMessages sent: {sent}\n"
    return title, body


def daily_summaries_send(*, now: datetime | None = None) -> int:
    """Send the summary to organizations where it is now the digest hour; returns how many notices went out."""
    now = now or timezone.now()
    sent = 0
    for organization in Organization.objects.filter(is_active=True):
        local = now.astimezone(ZoneInfo(organization.timezone))
        if local.hour != settings.NOTIFICATION_DIGEST_HOUR:
            continue
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        start, end = day_start - timedelta(days=1), day_start
        title, body = daily_summary_text(organization, start=start, end=end)
        users = [
            m.user
            for m in Membership.objects.unscoped()
            .filter(organization=organization, user__is_active=True)
            .select_related("user")
        ]
        result = notify(
            organization=organization,
            users=users,
            event=NotificationEvent.DAILY_SUMMARY,
            title=title,
            body=body,
            url="/",
            dedupe_key=f"digest:{start.date().isoformat()}",
        )
        sent += result["email"]
    return sent
