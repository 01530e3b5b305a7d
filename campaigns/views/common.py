from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.constants import Role
from leadflow.tenancy.views import OrganizationRequiredMixin
from leads.forms import add_errors

from ..forms import PeriodForm

__all__ = ["CampaignsPageMixin", "add_errors", "period_since"]


class CampaignsPageMixin(OrganizationRequiredMixin):
    """The lead-selling pages: managers and above (the navigation shows "Campaigns" to them)."""

    required_role = Role.MANAGER

    def actor(self):
        return self.request.user


def period_since(request) -> tuple[str, object]:
    """The figures' period from ``?period=`` (today in the organization's time zone, 7 or 30 days, or all)."""
    form = PeriodForm(request.GET)
    period = form.cleaned_data.get("period") if form.is_valid() else ""
    period = period or "30d"
    now = timezone.localtime()
    since = {
        "today": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "7d": now - timedelta(days=7),
        "30d": now - timedelta(days=30),
    }.get(period)
    return period, since
