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


# Conversations --------------------------------------------------------------------------------------------------------
from .models import (  # noqa: E402 - grouped with the admins that use them
    AutomationExecution,
    AutomationRule,
    Conversation,
    Message,
    MessageTemplate,
    MessagingSettings,
    Notification,
    OptOut,
    ProviderEvent,
)


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    """Every provider webhook as it arrived; "Process again" replays it (processing is idempotent)."""

    list_display = ["id", "provider", "kind", "organization", "signature_valid", "status", "attempts", "received_at"]
    list_filter = ["provider", "kind", "status", "signature_valid"]
    search_fields = ["raw_body", "error"]
    raw_id_fields = ["organization"]
    readonly_fields = [f.name for f in ProviderEvent._meta.fields]
    actions = ["process_again"]
    show_full_result_count = False

    @admin.action(description="Process again")
    def process_again(self, request, queryset):
        from .tasks import process_provider_event

        events = list(queryset.filter(signature_valid=True).values_list("pk", flat=True))
        for event_id in events:
            process_provider_event.delay(event_id)
        self.message_user(request, f"{len(events)} events queued again (bad signatures are never processed).")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "channel",
        "address",
        "contact_name",
        "status",
        "unread_count",
        "last_message_at",
    ]
    list_filter = ["channel", "status"]
    search_fields = ["address", "contact_name"]
    raw_id_fields = ["organization", "lead", "assignee"]
    show_full_result_count = False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "channel",
        "direction",
        "status",
        "provider",
        "provider_message_id",
        "created_at",
    ]
    list_filter = ["channel", "direction", "status", "provider", "purpose"]
    search_fields = ["provider_message_id", "to_address", "from_address"]
    raw_id_fields = ["organization", "conversation", "lead", "template", "template_variant", "sent_by"]
    show_full_result_count = False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "channel", "language", "status", "is_active"]
    list_filter = ["channel", "status"]
    raw_id_fields = ["organization"]


@admin.register(AutomationRule)
class AutomationRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "trigger", "system_key", "is_active"]
    list_filter = ["trigger", "is_active"]
    raw_id_fields = ["organization"]


@admin.register(AutomationExecution)
class AutomationExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "rule", "lead", "status", "next_step", "resume_at", "started_at"]
    list_filter = ["status"]
    raw_id_fields = ["organization", "rule", "lead"]
    show_full_result_count = False


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ["address", "organization", "channel", "method", "keyword", "created_at", "revoked_at"]
    list_filter = ["method", "channel"]
    search_fields = ["address"]
    raw_id_fields = ["organization", "lead"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "organization", "user", "event", "read_at", "created_at"]
    list_filter = ["event"]
    raw_id_fields = ["organization", "user"]
    show_full_result_count = False


@admin.register(MessagingSettings)
class MessagingSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "organization",
        "whatsapp_provider",
        "twilio_sms_from",
        "twilio_whatsapp_from",
        "meta_phone_number_id",
    ]
    raw_id_fields = ["organization"]
    exclude = ["meta_access_token_encrypted"]
