from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import OuterRef, Subquery

from billing.models import Subscription, SubscriptionStatus

from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from .services import organization_set_active


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "active_organization", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "active_organization"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    raw_id_fields = ["active_organization"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "country",
        "currency",
        "industry",
        "is_active",
        "subscription_status",
        "trial_ends_at",
        "created_at",
    ]
    list_filter = ["is_active", "country", "currency", "industry"]
    search_fields = ["name", "slug", "tax_id"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    actions = ["extend_trial", "suspend", "reactivate"]

    def get_queryset(self, request):
        subscriptions = Subscription.objects.unscoped().filter(organization=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                subscription_status=Subquery(subscriptions.values("status")[:1]),
                trial_ends_at=Subquery(subscriptions.values("trial_ends_at")[:1]),
            )
        )

    @admin.display(description="Subscription", ordering="subscription_status")
    def subscription_status(self, organization):
        return SubscriptionStatus(organization.subscription_status).label if organization.subscription_status else "–"

    @admin.display(description="Trial ends", ordering="trial_ends_at")
    def trial_ends_at(self, organization):
        return organization.trial_ends_at

    @admin.action(description="Extend the trial of selected organizations")
    def extend_trial(self, request, queryset):
        from billing.admin_actions import extend_trials

        return extend_trials(self, request, list(queryset), request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME))

    @admin.action(description="Suspend selected organizations")
    def suspend(self, request, queryset):
        suspended = [
            organization_set_active(organization=organization, active=False, actor=request.user, request=request)
            for organization in queryset.filter(is_active=True)
        ]
        self.message_user(request, f"Suspended {len(suspended)} organization(s): pages, API keys and sockets refused.")

    @admin.action(description="Reactivate selected organizations")
    def reactivate(self, request, queryset):
        reactivated = [
            organization_set_active(organization=organization, active=True, actor=request.user, request=request)
            for organization in queryset.filter(is_active=False)
        ]
        self.message_user(request, f"Reactivated {len(reactivated)} organization(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "created_at", "expires_at"]
    list_filter = ["role"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["token", "created_at", "accepted_at", "accepted_by"]
    raw_id_fields = ["organization", "invited_by", "accepted_by"]
    list_select_related = ["organization"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "display_prefix", "organization", "scopes", "status", "last_used_at", "created_at"]
    search_fields = ["name", "lookup_id", "organization__name"]
    readonly_fields = ["lookup_id", "key_hash", "created_at", "last_used_at"]
    raw_id_fields = ["organization", "created_by"]
    list_select_related = ["organization"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "organization", "actor_display", "target_repr", "ip_address"]
    list_filter = ["action"]
    search_fields = ["action", "target_repr", "actor_user__email", "organization__name", "ip_address"]
    date_hierarchy = "created_at"
    list_select_related = ["organization", "actor_user", "actor_api_key"]

    # The audit log is evidence: operators read it, nobody edits it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
