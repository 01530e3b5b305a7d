from django.contrib import admin

from .models import Plan, PlanPrice, Subscription


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "monthly_lead_quota", "seats", "is_public", "sort_order"]
    list_filter = ["is_public"]
    search_fields = ["name", "code"]
    inlines = [PlanPriceInline]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["organization", "plan", "status", "interval", "currency", "trial_ends_at", "current_period_end"]
    list_filter = ["status", "plan", "provider", "currency"]
    search_fields = ["organization__name", "organization__slug"]
    raw_id_fields = ["organization"]
    list_select_related = ["organization", "plan"]
