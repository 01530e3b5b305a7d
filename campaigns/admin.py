"""The operator console's view of campaigns, buyers and money. The ledger and outcomes are read-only: money moves
through the wallet services, never by editing a row."""

from django.contrib import admin

from .models import (
    Buyer,
    BuyerContact,
    BuyerSubscription,
    Campaign,
    CampaignRoutingState,
    Category,
    LeadDistribution,
    LeadSale,
    Supplier,
    Wallet,
    WalletEntry,
)
from .services.wallets import wallets_ensure


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "slug", "organization", "created_at"]
    search_fields = ["name", "slug"]
    raw_id_fields = ["organization"]


class SubscriptionInline(admin.TabularInline):
    model = BuyerSubscription
    extra = 0
    fields = ["buyer", "is_active", "daily_cap", "priority", "weight", "price_override"]
    raw_id_fields = ["buyer"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "category", "status", "pause_reason", "price_per_lead", "distribution_logic"]
    list_filter = ["status", "distribution_logic", "ad_channel"]
    search_fields = ["name"]
    raw_id_fields = ["organization", "category"]
    list_select_related = ["category"]
    inlines = [SubscriptionInline]


@admin.register(CampaignRoutingState)
class CampaignRoutingStateAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "last_subscription_id", "current_weights", "updated_at"]
    raw_id_fields = ["campaign"]


@admin.register(Buyer)
class BuyerAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "company", "email", "status", "timezone", "credit_limit", "organization"]
    list_filter = ["status"]
    search_fields = ["name", "company", "email"]
    raw_id_fields = ["organization"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        wallets_ensure(buyer_ids=[obj.pk], organization_id=obj.organization_id)


@admin.register(BuyerSubscription)
class BuyerSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "buyer", "campaign", "is_active", "hourly_cap", "daily_cap", "priority", "weight"]
    list_filter = ["is_active"]
    raw_id_fields = ["organization", "buyer", "campaign"]
    list_select_related = ["buyer", "campaign"]


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "email", "payout_per_lead", "is_active", "organization"]
    search_fields = ["name", "email"]
    raw_id_fields = ["organization"]
    filter_horizontal = ["campaigns"]


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["buyer", "balance", "updated_at", "organization"]
    raw_id_fields = ["buyer"]


@admin.register(WalletEntry)
class WalletEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "buyer", "kind", "amount", "balance_after", "lead", "note", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["buyer", "lead", "actor"]
    show_full_result_count = False


@admin.register(LeadDistribution)
class LeadDistributionAdmin(ReadOnlyAdmin):
    list_display = ["id", "lead", "campaign", "round", "status", "strategy", "revenue", "created_at"]
    list_filter = ["status", "strategy"]
    raw_id_fields = ["lead", "campaign"]
    show_full_result_count = False


@admin.register(LeadSale)
class LeadSaleAdmin(ReadOnlyAdmin):
    list_display = ["id", "lead", "campaign", "buyer", "price", "created_at"]
    raw_id_fields = ["lead", "campaign", "buyer", "subscription", "distribution", "wallet_entry"]
    show_full_result_count = False


@admin.register(BuyerContact)
class BuyerContactAdmin(ReadOnlyAdmin):
    list_display = ["contact_key", "buyer", "campaign", "sale"]
    search_fields = ["contact_key"]
    raw_id_fields = ["buyer", "campaign", "sale"]
