from __future__ import annotations

from rest_framework import serializers

from campaigns.models import Buyer

from ..models import Invoice, InvoiceLine, Subscription, WalletTopUp


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["kind", "description", "quantity", "unit_amount", "amount"]


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)
    tax_lines = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "currency",
            "subtotal",
            "tax_total",
            "total",
            "tax_kind",
            "tax_rate",
            "tax_note",
            "sac_code",
            "customer_name",
            "customer_country",
            "customer_tax_id",
            "period_start",
            "period_end",
            "provider",
            "provider_reference",
            "issued_at",
            "paid_at",
            "lines",
            "tax_lines",
        ]
        read_only_fields = fields

    def get_tax_lines(self, invoice) -> list[dict]:
        return [{"label": label, "rate": str(rate), "amount": str(amount)} for label, rate, amount in invoice.tax_split]


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="code", read_only=True)
    pending_plan = serializers.SlugRelatedField(slug_field="code", read_only=True)
    trial_days_left = serializers.IntegerField(read_only=True, allow_null=True)
    grace_ends_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Subscription
        fields = [
            "plan",
            "status",
            "interval",
            "currency",
            "provider",
            "trial_ends_at",
            "trial_days_left",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "pending_plan",
            "past_due_since",
            "grace_ends_at",
            "suspended_at",
            "cancelled_at",
        ]
        read_only_fields = fields


class WalletTopUpSerializer(serializers.ModelSerializer):
    buyer = serializers.PrimaryKeyRelatedField(queryset=Buyer.objects)  # the manager: scoped per request

    class Meta:
        model = WalletTopUp
        fields = [
            "id",
            "buyer",
            "kind",
            "amount",
            "currency",
            "provider",
            "status",
            "save_method",
            "provider_reference",
            "payment_reference",
            "checkout_url",
            "checkout_options",
            "error",
            "created_at",
            "paid_at",
        ]
        read_only_fields = [f for f in fields if f not in ("buyer", "amount", "save_method")]
