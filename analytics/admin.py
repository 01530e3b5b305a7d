"""Operators see each organization's rollup state and can rebuild it (the same as ``manage.py rebuild_analytics``)."""

from __future__ import annotations

from django.contrib import admin, messages

from .models import RollupState
from .services import rollups_rebuild


@admin.register(RollupState)
class RollupStateAdmin(admin.ModelAdmin):
    list_display = ["organization", "timezone", "refreshed_at", "last_refresh_ms", "rebuilt_at", "rebuild_requested"]
    readonly_fields = ["organization", "timezone", "refreshed_at", "last_refresh_ms", "rebuilt_at"]
    fields = [*readonly_fields, "rebuild_requested"]
    actions = ["rebuild"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Rebuild the rollups now")
    def rebuild(self, request, queryset):
        for state in queryset.select_related("organization"):
            result = rollups_rebuild(organization=state.organization)
            messages.success(request, f"{state.organization}: rebuilt in {result['ms']} ms.")
