"""The operator console's own pages: system health and campaign monitoring (``leadflow.admin_site``)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.template.response import TemplateResponse

from campaigns.constants import CampaignStatus

from .campaigns import campaigns_activity, campaigns_totals, day_start
from .health import system_health

WINDOWS = {"today": ("Today (UTC)", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30)}


def system_health_view(request):
    context = {
        **admin.site.each_context(request),
        "title": "System health",
        "health": system_health(),
        # The page refreshes itself; ?refresh=0 stops it (e.g. to read a long table).
        "refresh_seconds": 0 if request.GET.get("refresh") == "0" else 15,
    }
    return TemplateResponse(request, "admin/operations/system_health.html", context)


def campaign_monitoring_view(request):
    window = request.GET.get("window") if request.GET.get("window") in WINDOWS else "today"
    label, days = WINDOWS[window]
    status = request.GET.get("status") if request.GET.get("status") in CampaignStatus.values else None
    since = day_start() - timedelta(days=days - 1)
    rows = campaigns_activity(since=since, until=day_start() + timedelta(days=1), status=status)
    context = {
        **admin.site.each_context(request),
        "title": "Campaign monitoring",
        "rows": rows,
        "totals": campaigns_totals(rows),
        "since": since,
        "window": window,
        "window_label": label,
        "windows": [(key, value[0]) for key, value in WINDOWS.items()],
        "status": status or "",
        "statuses": CampaignStatus.choices,
    }
    return TemplateResponse(request, "admin/operations/campaigns.html", context)
