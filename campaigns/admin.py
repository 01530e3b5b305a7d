"""The operator console's view of campaigns, buyers and money. The ledger and outcomes are read-only: money moves
through the wallet services, never by editing a row."""

from django.contrib import admin, messages

from leadflow.exceptions import ServiceError

from .constants import ReturnStatus
from .models import (
    AutoRecharge,
    Buyer,
    BuyerContact,
    BuyerInvite,
    BuyerPortalUser,
    BuyerSubscription,
    Campaign,
    CampaignRoutingState,
    CampaignSpend,
    CampaignSubmission,
    Category,
    DeliveryMethod,
    LeadDistribution,
    LeadReturn,
    LeadSale,
    SaleDelivery,
    Supplier,
    SupplierApiKey,
    Wallet,
    WalletEntry,
)
from .services.deliveries import sale_delivery_retry
from .services.returns import lead_return_approve
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


@admin.register(CampaignSpend)
class CampaignSpendAdmin(ReadOnlyAdmin):
    """Recorded ad spend by day; recorded through the campaign page or ``campaign_spend_record``, never edited."""

    list_display = ["id", "campaign", "spent_on", "amount", "total_after", "actor", "organization", "created_at"]
    list_filter = ["spent_on"]
    raw_id_fields = ["organization", "campaign", "actor"]
    list_select_related = ["campaign", "actor", "organization"]


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


@admin.register(SupplierApiKey)
class SupplierApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["api_key", "supplier", "organization", "created_at"]
    raw_id_fields = ["api_key", "supplier"]


@admin.register(CampaignSubmission)
class CampaignSubmissionAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "supplier", "outcome", "is_test", "payout", "lead", "created_at"]
    list_filter = ["outcome", "is_test"]
    raw_id_fields = ["submission", "campaign", "supplier", "lead"]
    show_full_result_count = False


@admin.register(DeliveryMethod)
class DeliveryMethodAdmin(ReadOnlyAdmin):
    """Methods are created through the buyer's page or the API (a webhook's endpoint and secret come with it)."""

    list_display = ["id", "buyer", "kind", "destination", "webhook_endpoint", "is_active", "organization"]
    list_filter = ["kind", "is_active"]
    search_fields = ["destination", "buyer__name"]
    raw_id_fields = ["buyer", "webhook_endpoint"]


@admin.register(SaleDelivery)
class SaleDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "sale", "kind", "status", "attempts", "provider", "provider_message_id", "sent_at"]
    list_filter = ["kind", "status"]
    search_fields = ["provider_message_id"]
    raw_id_fields = ["sale", "method", "webhook_delivery"]
    show_full_result_count = False
    actions = ["retry"]

    @admin.action(description="Send again now (email, SMS, WhatsApp)")
    def retry(self, request, queryset):
        done = 0
        for delivery in queryset:
            try:
                sale_delivery_retry(delivery=delivery, actor=request.user, request=request)
                done += 1
            except ServiceError as error:
                messages.warning(request, f"Delivery {delivery.pk}: {error.message}")
        messages.success(request, f"{done} deliveries queued again.")


@admin.register(LeadReturn)
class LeadReturnAdmin(ReadOnlyAdmin):
    list_display = ["id", "buyer", "campaign", "lead", "reason", "status", "requested_at", "decided_at"]
    list_filter = ["status", "reason"]
    raw_id_fields = ["sale", "buyer", "campaign", "lead", "requested_by", "decided_by", "refund_entry"]
    actions = ["approve"]

    @admin.action(description="Approve and refund (no resale)")
    def approve(self, request, queryset):
        for lead_return in queryset.filter(status=ReturnStatus.REQUESTED):
            lead_return_approve(lead_return=lead_return, actor=request.user, request=request)
        messages.success(request, "Approved returns refunded.")


@admin.register(BuyerPortalUser)
class BuyerPortalUserAdmin(admin.ModelAdmin):
    list_display = ["user", "buyer", "organization", "created_at"]
    search_fields = ["user__email", "buyer__name"]
    raw_id_fields = ["organization", "buyer", "user"]


@admin.register(BuyerInvite)
class BuyerInviteAdmin(ReadOnlyAdmin):
    list_display = ["code", "buyer", "organization", "use_count", "max_uses", "expires_at", "revoked_at"]
    search_fields = ["code"]
    raw_id_fields = ["buyer", "created_by"]


@admin.register(AutoRecharge)
class AutoRechargeAdmin(ReadOnlyAdmin):
    list_display = ["id", "buyer", "amount", "status", "provider", "reference", "error", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["buyer"]
