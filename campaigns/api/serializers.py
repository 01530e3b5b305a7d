from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from rest_framework import serializers

from ..models import (
    Buyer,
    BuyerSubscription,
    Campaign,
    Category,
    LeadDistribution,
    LeadSale,
    Supplier,
    WalletEntry,
)
from ..schema import field_filter_errors, field_schema_errors


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name", "slug", "fields", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_fields(self, fields):
        errors = field_schema_errors(fields)
        if errors:
            raise serializers.ValidationError(errors)
        return fields


class CampaignSerializer(serializers.ModelSerializer):
    cost_per_lead = serializers.SerializerMethodField(
        help_text="Recorded ad spend over the leads received; null before any lead"
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "category",
            "name",
            "status",
            "pause_reason",
            "price_per_lead",
            "distribution_logic",
            "buyers_pick_states",
            "ad_channel",
            "daily_budget",
            "total_budget",
            "ad_spend",
            "cost_per_lead",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "status", "pause_reason", "created_at", "updated_at"]

    def get_cost_per_lead(self, campaign) -> Decimal | None:
        # The list annotates lead_count (one query for the page); a single row falls back to the selector.
        count = getattr(campaign, "lead_count", None)
        if count is None:
            from ..selectors import campaign_cost_per_lead

            value = campaign_cost_per_lead(campaign)
        else:
            value = (campaign.ad_spend / count).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else None
        return None if value is None else str(value)


class CampaignPauseSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=["manual", "budget"], default="manual")


class BuyerSerializer(serializers.ModelSerializer):
    balance = serializers.SerializerMethodField(help_text="The wallet's balance, in the organization's currency")

    class Meta:
        model = Buyer
        fields = [
            "id",
            "name",
            "company",
            "email",
            "phone",
            "status",
            "timezone",
            "credit_limit",
            "balance",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_balance(self, buyer) -> str:
        wallet = getattr(buyer, "wallet", None)
        return str(wallet.balance) if wallet is not None else "0.00"


class BuyerSubscriptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BuyerSubscription
        fields = [
            "id",
            "buyer",
            "campaign",
            "is_active",
            "hourly_cap",
            "daily_cap",
            "weekly_cap",
            "monthly_cap",
            "states",
            "field_filters",
            "schedule_days",
            "schedule_start",
            "schedule_end",
            "priority",
            "weight",
            "price_override",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_field_filters(self, filters):
        errors = field_filter_errors(filters)
        if errors:
            raise serializers.ValidationError(errors)
        return filters

    def validate_schedule_days(self, days):
        if any(day < 0 or day > 6 for day in days):
            raise serializers.ValidationError("Days are 0 (Monday) to 6 (Sunday).")
        return sorted(set(days))


class SupplierSerializer(serializers.ModelSerializer):
    campaigns = serializers.PrimaryKeyRelatedField(many=True, queryset=Campaign.objects, required=False)

    class Meta:
        model = Supplier
        fields = ["id", "name", "email", "payout_per_lead", "campaigns", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class WalletEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = WalletEntry
        fields = ["id", "buyer", "kind", "amount", "balance_after", "lead", "note", "actor", "created_at"]
        read_only_fields = fields


class WalletCreditSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class WalletAdjustSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Negative takes money out")
    note = serializers.CharField(max_length=255)


class LeadSaleSerializer(serializers.ModelSerializer):
    class Meta:
        model = LeadSale
        fields = ["id", "buyer", "subscription", "price", "created_at"]
        read_only_fields = fields


class LeadDistributionSerializer(serializers.ModelSerializer):
    sales = LeadSaleSerializer(many=True, read_only=True)

    class Meta:
        model = LeadDistribution
        fields = ["id", "lead", "campaign", "round", "status", "strategy", "revenue", "reasons", "sales", "created_at"]
        read_only_fields = fields


class CampaignFiguresSerializer(serializers.Serializer):
    leads = serializers.IntegerField(help_text="Leads received (first routings)")
    sold = serializers.IntegerField()
    unsold = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    cost_per_lead = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    unsold_reasons = serializers.DictField(child=serializers.IntegerField(), help_text="reason → buyers turned away")
