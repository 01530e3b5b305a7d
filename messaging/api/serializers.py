from __future__ import annotations

from rest_framework import serializers

from leads.constants import RuleOperator

from ..constants import (
    AutomationAction,
    AutomationTrigger,
    MessageChannel,
    NotificationChannel,
    NotificationEvent,
)
from ..models import (
    AutomationExecution,
    AutomationRule,
    AutomationStepRun,
    Conversation,
    Message,
    MessageTemplate,
    MessagingSettings,
    Notification,
    OptOut,
    TemplateVariant,
    UsageRecord,
)


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


# Conversations ------------------------------------------------------------------------------------------------------


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = [
            "id",
            "channel",
            "address",
            "lead",
            "contact_name",
            "status",
            "assignee",
            "unread_count",
            "needs_reply",
            "last_message_at",
            "last_message_preview",
            "last_inbound_at",
            "last_outbound_at",
            "created_at",
        ]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "lead",
            "purpose",
            "channel",
            "direction",
            "to_address",
            "from_address",
            "subject",
            "body",
            "media",
            "template",
            "template_variant",
            "template_variables",
            "provider",
            "provider_message_id",
            "status",
            "error_code",
            "error_message",
            "sent_by",
            "automated",
            "send_after",
            "created_at",
            "submitted_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "received_at",
            "replied_at",
        ]
        read_only_fields = fields


class ConversationReplySerializer(serializers.Serializer):
    body = serializers.CharField(required=False, allow_blank=True, default="")
    template = serializers.PrimaryKeyRelatedField(queryset=MessageTemplate.objects, required=False, allow_null=True)


class ConversationAssignSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(allow_null=True)


class MessageSendSerializer(serializers.Serializer):
    """A message to a lead that may have no conversation yet."""

    lead = serializers.IntegerField()
    channel = serializers.ChoiceField(choices=MessageChannel.choices)
    body = serializers.CharField(required=False, allow_blank=True, default="")
    template = serializers.PrimaryKeyRelatedField(queryset=MessageTemplate.objects, required=False, allow_null=True)


# Templates -----------------------------------------------------------------------------------------------------------


class TemplateVariantSerializer(serializers.ModelSerializer):
    template = serializers.PrimaryKeyRelatedField(queryset=MessageTemplate.objects)

    class Meta:
        model = TemplateVariant
        fields = [
            "id",
            "template",
            "label",
            "subject",
            "body",
            "provider_template_id",
            "weight",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class MessageTemplateSerializer(serializers.ModelSerializer):
    variants = TemplateVariantSerializer(many=True, read_only=True)

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "name",
            "channel",
            "language",
            "category",
            "subject",
            "body",
            "variables",
            "status",
            "provider_template_id",
            "rejection_reason",
            "synced_at",
            "is_active",
            "variants",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "status", "rejection_reason", "synced_at", "variants", "created_at", "updated_at"]

    def validate_variables(self, value):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise serializers.ValidationError("A list of lead field names.")
        return value


class TemplatePreviewSerializer(serializers.Serializer):
    lead = serializers.IntegerField(required=False)


# Automations ---------------------------------------------------------------------------------------------------------


class AutomationConditionSerializer(serializers.Serializer):
    field = serializers.CharField()
    operator = serializers.ChoiceField(choices=RuleOperator.choices)
    value = serializers.CharField(required=False, allow_blank=True, default="")


class AutomationConditionsSerializer(serializers.Serializer):
    match = serializers.ChoiceField(choices=["all", "any"], default="all")
    rules = AutomationConditionSerializer(many=True, required=False, default=list)


class AutomationStepSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=AutomationAction.choices)
    config = serializers.DictField(required=False, default=dict)


class AutomationRuleSerializer(serializers.ModelSerializer):
    conditions = AutomationConditionsSerializer(required=False)
    steps = AutomationStepSerializer(many=True)
    trigger = serializers.ChoiceField(choices=AutomationTrigger.choices)

    class Meta:
        model = AutomationRule
        fields = [
            "id",
            "name",
            "system_key",
            "trigger",
            "trigger_config",
            "conditions",
            "stop_on_reply",
            "is_active",
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "system_key", "created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["steps"] = [{"action": s.action, "config": s.config} for s in instance.steps.all()]
        data["conditions"] = instance.conditions or {"match": "all", "rules": []}
        return data


class StepRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = AutomationStepRun
        fields = ["position", "action", "status", "detail", "message", "ran_at"]


class AutomationExecutionSerializer(serializers.ModelSerializer):
    step_runs = StepRunSerializer(many=True, read_only=True)

    class Meta:
        model = AutomationExecution
        fields = [
            "id",
            "rule",
            "lead",
            "trigger_key",
            "status",
            "next_step",
            "resume_at",
            "stop_reason",
            "started_at",
            "finished_at",
            "step_runs",
        ]
        read_only_fields = fields


# Compliance, notifications, settings --------------------------------------------------------------------------------


class OptOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OptOut
        fields = ["id", "address", "lead", "channel", "method", "keyword", "created_at", "revoked_at"]
        read_only_fields = ["id", "lead", "method", "keyword", "created_at", "revoked_at"]


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "event", "title", "body", "url", "data", "read_at", "created_at"]
        read_only_fields = fields


class NotificationPreferenceSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=NotificationEvent.choices)
    channel = serializers.ChoiceField(choices=NotificationChannel.choices)
    enabled = serializers.BooleanField()


class MessagingSettingsSerializer(serializers.ModelSerializer):
    meta_access_token = serializers.CharField(write_only=True, required=False, allow_blank=True)
    meta_access_token_set = serializers.SerializerMethodField()

    class Meta:
        model = MessagingSettings
        fields = [
            "whatsapp_provider",
            "whatsapp_enabled",
            "sms_enabled",
            "email_enabled",
            "twilio_sms_from",
            "twilio_whatsapp_from",
            "twilio_messaging_service_sid",
            "meta_phone_number_id",
            "meta_business_account_id",
            "meta_access_token",
            "meta_access_token_set",
            "email_from",
            "email_reply_domain",
            "quiet_hours_enabled",
            "quiet_hours_start",
            "quiet_hours_end",
            "first_contact_target_minutes",
            "sla_escalation_enabled",
            "ai_enabled",
            "ai_monthly_budget",
            "updated_at",
        ]
        read_only_fields = ["updated_at", "meta_access_token_set"]

    def get_meta_access_token_set(self, obj) -> bool:
        return bool(obj.meta_access_token_encrypted)
