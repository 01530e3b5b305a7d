from django.contrib import admin

from .models import RetentionPolicy


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """Read-only: organizations set their policy (Settings → Privacy), where the change is audited."""

    list_display = ["organization", "raw_submissions_days", "webhook_logs_days", "closed_leads_days", "updated_at"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
