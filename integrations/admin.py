"""The operator console's view of integrations: outbound webhook endpoints and their delivery log, with replay."""

from django.contrib import admin, messages

from leadflow.exceptions import ServiceError

from .models import IntegrationConnection, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from .services.webhooks import webhook_delivery_replay

# Outbound webhooks ---------------------------------------------------------------------------------------------------


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "purpose", "url", "is_active", "consecutive_failures", "last_success_at"]
    list_filter = ["purpose", "is_active"]
    search_fields = ["url", "description", "organization__name"]
    list_select_related = ["organization"]
    exclude = ["secret", "previous_secret"]  # operators never need them; rotating is the organization's job
    readonly_fields = [
        "organization",
        "purpose",
        "created_by",
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "consecutive_failures",
        "last_success_at",
        "previous_secret_expires_at",
    ]

    def has_add_permission(self, request):
        return False  # endpoints get their secret and audit entry from the service, through the page or the API


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["number", "trigger", "started_at", "status_code", "latency_ms", "error", "response_excerpt"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "endpoint", "event_type", "status", "attempt_count", "created_at"]
    list_filter = ["status"]
    list_select_related = ["organization", "endpoint", "message"]
    search_fields = ["message__message_id", "endpoint__url"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Event")
    def event_type(self, delivery):
        return delivery.message.event_type

    @admin.action(description="Replay the selected deliveries")
    def replay(self, request, queryset):
        replayed = 0
        for delivery in queryset:
            try:
                webhook_delivery_replay(delivery=delivery, actor=request.user, request=request)
                replayed += 1
            except ServiceError as error:
                messages.warning(request, f"Delivery {delivery.pk}: {error.message}")
        messages.success(request, f"{replayed} deliveries queued again.")


@admin.register(WebhookMessage)
class WebhookMessageAdmin(admin.ModelAdmin):
    list_display = ["message_id", "organization", "event_type", "created_at"]
    search_fields = ["message_id", "source_key"]
    list_select_related = ["organization"]
    readonly_fields = [field.name for field in WebhookMessage._meta.fields]

    def has_add_permission(self, request):
        return False


# Inbound connections -------------------------------------------------------------------------------------------------


@admin.register(IntegrationConnection)
class IntegrationConnectionAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "provider", "name", "status", "consecutive_errors", "last_success_at"]
    list_filter = ["provider", "status"]
    search_fields = ["name", "external_account_id", "organization__name"]
    list_select_related = ["organization"]
    # Credentials are encrypted and never shown; the public token is a URL secret for the organization only.
    exclude = ["credentials", "public_token"]
    readonly_fields = [
        "organization",
        "provider",
        "external_account_id",
        "last_success_at",
        "last_error",
        "last_error_at",
        "consecutive_errors",
        "last_synced_at",
        "created_by",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False  # connections get their token, key and audit entry from the services


# Meta's Conversions API for CRM ---------------------------------------------------------------------------------------

from .models import ConversionEvent  # noqa: E402 - this section was added after the others
from .services.conversions import conversion_event_replay  # noqa: E402


@admin.register(ConversionEvent)
class ConversionEventAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "connection", "leadgen_id", "event_name", "status", "attempts", "event_time"]
    list_filter = ["status"]
    list_select_related = ["organization", "connection"]
    search_fields = ["leadgen_id", "event_name", "connection__name"]
    readonly_fields = [field.name for field in ConversionEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False  # rows come from lead stage changes only

    @admin.action(description="Send the selected stages to Meta again")
    def replay(self, request, queryset):
        replayed = 0
        for conversion_event in queryset:
            try:
                conversion_event_replay(conversion_event=conversion_event, actor=request.user, request=request)
                replayed += 1
            except ServiceError as error:
                messages.warning(request, f"Conversion event {conversion_event.pk}: {error.message}")
        messages.success(request, f"{replayed} stages queued again.")
