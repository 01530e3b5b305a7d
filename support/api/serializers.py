from rest_framework import serializers

from ..constants import BODY_MAX_LENGTH, SUBJECT_MAX_LENGTH, TicketCategory
from ..models import SupportTicket, TicketMessage


class TicketMessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_display", read_only=True)

    class Meta:
        model = TicketMessage
        fields = ["id", "author", "from_staff", "body", "created_at"]
        read_only_fields = fields


class SupportTicketSerializer(serializers.ModelSerializer):
    opened_by = serializers.EmailField(source="opened_by.email", read_only=True, default=None)

    class Meta:
        model = SupportTicket
        fields = ["id", "subject", "category", "status", "opened_by", "created_at", "last_message_at", "closed_at"]
        read_only_fields = fields


class SupportTicketDetailSerializer(SupportTicketSerializer):
    messages = TicketMessageSerializer(many=True, read_only=True)

    class Meta(SupportTicketSerializer.Meta):
        fields = [*SupportTicketSerializer.Meta.fields, "messages"]
        read_only_fields = fields


class TicketOpenSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=SUBJECT_MAX_LENGTH)
    category = serializers.ChoiceField(choices=TicketCategory.choices, default=TicketCategory.QUESTION)
    body = serializers.CharField(max_length=BODY_MAX_LENGTH)


class TicketReplySerializer(serializers.Serializer):
    body = serializers.CharField(max_length=BODY_MAX_LENGTH)
