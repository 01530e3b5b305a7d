from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from rest_framework import serializers

from ..models import (
    Buyer,
    BuyerInvite,
    BuyerSubscription,
    Campaign,
    Category,
    DeliveryMethod,
    LeadDistribution,
    LeadReturn,
    LeadSale,
    SaleDelivery,
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
            "return_window_hours",
            "auto_redistribute",
            "redistribute_max_rounds",
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
            "weekly_spend_limit",
            "monthly_spend_limit",
            "low_balance_threshold",
            "auto_recharge_enabled",
            "auto_recharge_threshold",
            "auto_recharge_amount",
            "auto_recharge_failures",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "auto_recharge_failures", "created_at", "updated_at"]

    def validate(self, attrs):
        merged = {
            name: attrs.get(name, getattr(self.instance, name, None))
            for name in ("auto_recharge_enabled", "auto_recharge_threshold", "auto_recharge_amount")
        }
        if merged["auto_recharge_enabled"] and (
            merged["auto_recharge_threshold"] is None or not merged["auto_recharge_amount"]
        ):
            raise serializers.ValidationError(
                {"auto_recharge_amount": ["Auto-recharge needs both a threshold and an amount to charge."]}
            )
        return attrs

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


class RedistributeResultSerializer(serializers.Serializer):
    offered = serializers.IntegerField()
    sold = serializers.IntegerField()
    unsold = serializers.IntegerField()


class SupplierKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class SupplierKeySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    prefix = serializers.CharField(source="display_prefix")
    status = serializers.CharField()
    key = serializers.CharField(required=False, help_text="The key itself: shown once, in the create response only")


class SupplierStatisticsSerializer(serializers.Serializer):
    submitted = serializers.IntegerField()
    accepted = serializers.IntegerField(help_text="New leads, test leads apart")
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Stored but not processed yet; retried")
    tests = serializers.IntegerField()
    sold = serializers.IntegerField(help_text="Accepted leads sold to at least one buyer")
    acceptance_rate = serializers.FloatField(allow_null=True)
    payout = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Owed for the accepted leads")


class SupplierStatsSerializer(serializers.ModelSerializer):
    statistics = serializers.SerializerMethodField()
    campaigns = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Supplier
        fields = ["id", "name", "payout_per_lead", "is_active", "campaigns", "statistics"]
        read_only_fields = fields

    def get_statistics(self, supplier) -> dict:
        from ..selectors import EMPTY_SUPPLIER_STATS

        stats = dict(self.context.get("statistics", {}).get(supplier.pk, EMPTY_SUPPLIER_STATS))
        stats["acceptance_rate"] = round(stats["accepted"] / stats["submitted"], 4) if stats["submitted"] else None
        return SupplierStatisticsSerializer(stats).data


class DeliveryMethodSerializer(serializers.ModelSerializer):
    buyer = serializers.PrimaryKeyRelatedField(queryset=Buyer.objects)
    url = serializers.URLField(
        required=False, allow_blank=True, write_only=True, help_text="Webhook and CRM kinds: where to post"
    )
    endpoint = serializers.SerializerMethodField(help_text="The webhook endpoint (webhook and CRM kinds)")

    class Meta:
        model = DeliveryMethod
        fields = ["id", "buyer", "kind", "destination", "url", "endpoint", "field_template", "is_active", "created_at"]
        read_only_fields = ["id", "endpoint", "created_at"]

    def get_endpoint(self, method) -> dict | None:
        endpoint = method.webhook_endpoint
        if endpoint is None:
            return None
        return {
            "id": endpoint.pk,
            "url": endpoint.url,
            "is_active": endpoint.is_active,
            "secret_hint": endpoint.secret_hint,
        }

    def validate_field_template(self, template):
        from ..delivery_content import field_template_errors

        if template in (None, {}):
            return {}
        errors = field_template_errors(template)
        if errors:
            raise serializers.ValidationError(errors)
        return template

    def validate(self, attrs):
        if self.instance is not None and "kind" in attrs and attrs["kind"] != self.instance.kind:
            raise serializers.ValidationError({"kind": ["The kind of a method cannot change; add another one."]})
        if self.instance is not None and "buyer" in attrs and attrs["buyer"] != self.instance.buyer:
            raise serializers.ValidationError({"buyer": ["A method belongs to its buyer."]})
        return attrs


class SaleDeliverySerializer(serializers.ModelSerializer):
    buyer = serializers.IntegerField(source="sale.buyer_id", read_only=True)
    lead = serializers.IntegerField(source="sale.lead_id", read_only=True)
    webhook_status = serializers.CharField(source="webhook_delivery.status", read_only=True, default=None)

    class Meta:
        model = SaleDelivery
        fields = [
            "id",
            "sale",
            "buyer",
            "lead",
            "method",
            "kind",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "provider",
            "provider_message_id",
            "sent_at",
            "webhook_delivery",
            "webhook_status",
            "created_at",
        ]
        read_only_fields = fields


class LeadSaleListSerializer(serializers.ModelSerializer):
    class Meta:
        model = LeadSale
        fields = ["id", "lead", "campaign", "buyer", "subscription", "price", "distribution", "created_at"]
        read_only_fields = fields


class LeadReturnSerializer(serializers.ModelSerializer):
    sale = serializers.PrimaryKeyRelatedField(queryset=LeadSale.objects)

    class Meta:
        model = LeadReturn
        fields = [
            "id",
            "sale",
            "buyer",
            "campaign",
            "lead",
            "reason",
            "note",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
            "refund_entry",
            "resell",
        ]
        read_only_fields = [name for name in fields if name not in ("sale", "reason", "note")]


class ReturnApproveSerializer(serializers.Serializer):
    resell = serializers.BooleanField(default=False, help_text="Offer the lead to the campaign's other buyers")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ReturnRejectSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, help_text="Why, for the buyer")


class BuyerInviteSerializer(serializers.ModelSerializer):
    buyer = serializers.PrimaryKeyRelatedField(queryset=Buyer.objects, required=False, allow_null=True)
    status = serializers.CharField(read_only=True)
    join_url = serializers.SerializerMethodField()

    class Meta:
        model = BuyerInvite
        fields = ["id", "code", "buyer", "max_uses", "use_count", "expires_at", "revoked_at", "status", "join_url"]
        read_only_fields = ["id", "code", "use_count", "revoked_at", "status", "join_url"]

    def get_join_url(self, invite) -> str:
        from django.conf import settings
        from django.urls import reverse

        return f"{settings.SITE_URL}{reverse('portal:join')}?code={invite.code}"
