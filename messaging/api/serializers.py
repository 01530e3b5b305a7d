from __future__ import annotations

from rest_framework import serializers

from ..models import UsageRecord


class UsageRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "channel",
            "provider",
            "provider_message_id",
            "quantity",
            "provider_cost",
            "cost_is_estimate",
            "currency",
            "markup_percent",
            "billable_amount",
            "description",
            "context",
            "created_at",
        ]
        read_only_fields = fields


class UsageSummarySerializer(serializers.Serializer):
    channel = serializers.CharField()
    currency = serializers.CharField()
    count = serializers.IntegerField()
    quantity = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=4)
    billable = serializers.DecimalField(max_digits=14, decimal_places=4)


class UsageMarkupSerializer(serializers.Serializer):
    markup_percent = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=0, max_value=1000)
