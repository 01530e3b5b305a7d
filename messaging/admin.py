"""The operator console's view of usage: read-only, records are written once by the metering service."""

from django.contrib import admin

from .models import UsagePricing, UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "channel",
        "provider",
        "provider_cost",
        "billable_amount",
        "currency",
        "created_at",
    ]
    list_filter = ["channel", "provider", "currency"]
    search_fields = ["source_key", "provider_message_id", "description"]
    raw_id_fields = ["organization"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UsagePricing)
class UsagePricingAdmin(admin.ModelAdmin):
    list_display = ["organization", "markup_percent", "updated_at"]
    raw_id_fields = ["organization"]
