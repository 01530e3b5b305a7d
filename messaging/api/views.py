from __future__ import annotations

import django_filters
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.constants import Role
from accounts.models import User
from leadflow.api.viewsets import OrganizationModelViewSet, OrganizationScopedAPIView, OrganizationScopedViewSet
from leads.models import Lead
from leads.selectors import leads_visible_to

from .. import selectors
from ..constants import OptOutMethod
from ..models import (
    AutomationExecution,
    AutomationRule,
    Conversation,
    Message,
    MessageTemplate,
    Notification,
    OptOut,
    TemplateVariant,
    UsageRecord,
)
from ..services import conversations as conversation_services
from ..services.automations import rule_save
from ..services.channels import messaging_settings_for, messaging_settings_update
from ..services.compliance import address_normalize, opt_in_record, opt_out_record
from ..services.metering import usage_markup_set
from ..services.notifications import notifications_mark_read, preferences_of, preferences_set, unread_count, wants
from ..services.sending import message_send
from ..services.templates import template_create, template_render, template_update
from . import serializers as s


class UsageRecordFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    buyer = django_filters.NumberFilter(field_name="context__buyer_id")

    class Meta:
        model = UsageRecord
        fields = ["channel", "provider", "currency"]


class UsageRecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Every metered SMS, WhatsApp message, email and buyer webhook, with provider cost, markup and billable
    amount; `summary/` totals them per channel and currency."""

    queryset = UsageRecord.objects
    serializer_class = s.UsageRecordSerializer
    filterset_class = UsageRecordFilter
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    action_roles = {"markup": Role.OWNER}
    summary_actions = ("summary",)
    ordering_fields = ["created_at"]

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-created_at", "-id")

    @extend_schema(responses=s.UsageSummarySerializer(many=True))
    @action(detail=False, methods=["get"])
    def summary(self, request):
        records = self.filter_queryset(self.get_queryset())
        rows = (
            records.order_by()
            .values("channel", "currency")
            .annotate(**selectors.USAGE_TOTALS)
            .order_by("channel", "currency")
        )
        return Response(s.UsageSummarySerializer(rows, many=True).data)

    @extend_schema(request=s.UsageMarkupSerializer, responses=s.UsageMarkupSerializer)
    @action(detail=False, methods=["post"])
    def markup(self, request):
        """Set the organization's markup on provider costs (owners); later records are billed with it."""
        serializer = s.UsageMarkupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pricing = usage_markup_set(
            organization=request.organization,
            markup_percent=serializer.validated_data["markup_percent"],
            actor=request.user if request.user.is_authenticated else None,
            request=request,
        )
        return Response(s.UsageMarkupSerializer(pricing).data)


def _actor(request):
    return request.user if request.user.is_authenticated else None


# Conversations --------------------------------------------------------------------------------------------------------


class ConversationFilter(django_filters.FilterSet):
    view = django_filters.ChoiceFilter(
        choices=[(v, v) for v in selectors.INBOX_FILTERS],
        method="filter_view",
        label="mine, unassigned, unread, archived",
    )

    class Meta:
        model = Conversation
        fields = ["channel", "status", "lead", "assignee"]

    def filter_view(self, queryset, name, value):
        membership = getattr(self.request, "membership", None)
        if value == "mine":
            return queryset.filter(assignee_id=membership.user_id if membership else 0)
        if value == "unassigned":
            return queryset.filter(assignee__isnull=True)
        if value == "unread":
            return queryset.filter(unread_count__gt=0)
        return queryset.filter(status="archived")


class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Conversations (one per address and channel). Agents see theirs and their leads'; managers see all.
    `messages/` is the thread; `reply/` sends (compliance applies: opt-outs, the WhatsApp window)."""

    queryset = Conversation.objects
    serializer_class = s.ConversationSerializer
    filterset_class = ConversationFilter
    read_role = Role.AGENT
    write_role = Role.AGENT
    ordering_fields = ["last_message_at"]

    def safely_get_queryset(self, queryset):
        queryset = conversation_services.visible_conversations(queryset, membership=self.request.membership)
        return queryset.order_by("-last_message_at", "-id")

    @extend_schema(responses=s.MessageSerializer(many=True))
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        return Response(s.MessageSerializer(selectors.thread_messages(conversation), many=True).data)

    @extend_schema(request=s.ConversationReplySerializer, responses={201: s.MessageSerializer})
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        conversation = self.get_object()
        serializer = s.ConversationReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = message_send(
            organization=request.organization,
            channel=conversation.channel,
            conversation=conversation,
            body=serializer.validated_data["body"],
            template=serializer.validated_data.get("template"),
            actor=_actor(request),
        )
        return Response(s.MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ConversationAssignSerializer, responses=s.ConversationSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        conversation = self.get_object()
        serializer = s.ConversationAssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_id = serializer.validated_data["assignee"]
        assignee = User.objects.filter(pk=user_id).first() if user_id else None
        if user_id and assignee is None:
            raise ValidationError({"assignee": ["Pick a member of this organization."]})
        conversation_services.conversation_assign(conversation=conversation, assignee=assignee, actor=_actor(request))
        return Response(s.ConversationSerializer(conversation).data)

    def _simple(self, service):
        conversation = self.get_object()
        service(conversation=conversation, actor=_actor(self.request))
        return Response(s.ConversationSerializer(conversation).data)

    @extend_schema(request=None, responses=s.ConversationSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        return self._simple(conversation_services.conversation_archive)

    @extend_schema(request=None, responses=s.ConversationSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._simple(conversation_services.conversation_reopen)

    @extend_schema(request=None, responses=s.ConversationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        return self._simple(conversation_services.conversation_mark_read)

    @extend_schema(request=None, responses=s.ConversationSerializer)
    @action(detail=True, methods=["post"])
    def unread(self, request, pk=None):
        return self._simple(conversation_services.conversation_mark_unread)


class MessageFilter(django_filters.FilterSet):
    class Meta:
        model = Message
        fields = ["conversation", "lead", "channel", "direction", "status", "template", "purpose"]


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Every message sent and received, with its status; `send/` messages a lead on a channel."""

    queryset = Message.objects
    serializer_class = s.MessageSerializer
    filterset_class = MessageFilter
    read_role = Role.AGENT
    write_role = Role.AGENT

    def safely_get_queryset(self, queryset):
        membership = self.request.membership
        if membership is not None and not membership.has_role(Role.MANAGER):
            visible = conversation_services.visible_conversations(Conversation.objects.all(), membership=membership)
            queryset = queryset.filter(conversation__in=visible)
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=s.MessageSendSerializer, responses={201: s.MessageSerializer})
    @action(detail=False, methods=["post"])
    def send(self, request):
        serializer = s.MessageSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = leads_visible_to(request.membership).filter(pk=serializer.validated_data["lead"]).first()
        if lead is None:
            raise ValidationError({"lead": ["No such lead."]})
        message = message_send(
            organization=request.organization,
            channel=serializer.validated_data["channel"],
            lead=lead,
            body=serializer.validated_data["body"],
            template=serializer.validated_data.get("template"),
            actor=_actor(request),
        )
        return Response(s.MessageSerializer(message).data, status=status.HTTP_201_CREATED)


# Templates -----------------------------------------------------------------------------------------------------------


class MessageTemplateViewSet(OrganizationModelViewSet):
    """WhatsApp, SMS and email templates; `preview/` renders one for a lead (the newest when none is named)."""

    queryset = MessageTemplate.objects
    serializer_class = s.MessageTemplateSerializer
    filterset_fields = ["channel", "name", "status", "language"]
    read_role = Role.AGENT
    write_role = Role.MANAGER

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("variants").order_by("name", "channel", "language")

    def perform_create(self, serializer):
        serializer.instance = template_create(
            organization=self.request.organization, actor=_actor(self.request), **serializer.validated_data
        )

    def perform_update(self, serializer):
        template_update(template=serializer.instance, actor=_actor(self.request), **serializer.validated_data)

    @extend_schema(request=s.TemplatePreviewSerializer, responses=dict)
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        template = self.get_object()
        lead_id = request.data.get("lead") if isinstance(request.data, dict) else None
        leads = leads_visible_to(request.membership).select_related("stage", "owner", "organization")
        lead = (leads.filter(pk=lead_id) if lead_id else leads.filter(duplicate_of__isnull=True)).first()
        if lead_id and lead is None:
            raise ValidationError({"lead": ["No such lead."]})
        rendered = template_render(template, lead or Lead(organization=request.organization, full_name="Asha Rao"))
        return Response(
            {
                "subject": rendered.subject,
                "body": rendered.body,
                "variables": rendered.variables,
                "lead": lead.pk if lead else None,
            }
        )


class TemplateVariantViewSet(OrganizationModelViewSet):
    queryset = TemplateVariant.objects
    serializer_class = s.TemplateVariantSerializer
    filterset_fields = ["template"]
    read_role = Role.AGENT
    write_role = Role.MANAGER

    def safely_get_queryset(self, queryset):
        return queryset.order_by("template", "label")


# Automations ---------------------------------------------------------------------------------------------------------


class AutomationRuleViewSet(OrganizationModelViewSet):
    """Rules: a trigger, conditions (all/any) and steps in order (`{"action", "config"}`)."""

    queryset = AutomationRule.objects
    serializer_class = s.AutomationRuleSerializer
    filterset_fields = ["trigger", "is_active"]
    read_role = Role.MANAGER
    write_role = Role.MANAGER

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("steps").order_by("name", "id")

    def _save(self, serializer, rule=None):
        data = dict(serializer.validated_data)
        steps = data.pop("steps", None)
        if steps is None:
            steps = [{"action": step.action, "config": step.config} for step in rule.steps.all()]
        with transaction.atomic():
            serializer.instance = rule_save(
                organization=self.request.organization, rule=rule, steps=steps, actor=_actor(self.request), **data
            )

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, rule=serializer.instance)


class AutomationExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Each run of a rule for a lead, with what each step did."""

    queryset = AutomationExecution.objects
    serializer_class = s.AutomationExecutionSerializer
    filterset_fields = ["rule", "lead", "status"]
    read_role = Role.MANAGER

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("step_runs").order_by("-started_at", "-id")


# Opt-outs ------------------------------------------------------------------------------------------------------------


class OptOutViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationScopedViewSet,
):
    """Addresses that asked not to be messaged. Creating one records a manual opt-out; deleting it opts in again."""

    queryset = OptOut.objects
    serializer_class = s.OptOutSerializer
    filterset_fields = ["channel", "method", "lead"]
    read_role = Role.AGENT
    write_role = Role.MANAGER

    def safely_get_queryset(self, queryset):
        return queryset.filter(revoked_at__isnull=True).order_by("-created_at", "-id")

    def perform_create(self, serializer):
        channel = serializer.validated_data.get("channel") or "sms"
        address = address_normalize(
            channel, serializer.validated_data["address"], region=self.request.organization.default_phone_region
        )
        if not address:
            raise ValidationError({"address": ["Give a phone number or an email address."]})
        from ..services.conversations import lead_for_address

        lead = lead_for_address(organization_id=self.request.organization.pk, channel=channel, address=address)
        serializer.instance = opt_out_record(
            organization=self.request.organization,
            address=address,
            lead=lead,
            channel=serializer.validated_data.get("channel", ""),
            method=OptOutMethod.MANUAL,
            actor=_actor(self.request),
        )

    def perform_destroy(self, instance):
        opt_in_record(
            organization=self.request.organization,
            address=instance.address,
            lead=instance.lead,
            actor=_actor(self.request),
        )


# Per member, per organization: notifications, preferences; and the organization's messaging settings. These are
# not router viewsets: a member's notifications are theirs alone (tested in tests/messaging/test_api.py).


class NotificationsView(OrganizationScopedAPIView):
    """The caller's notifications, newest first (`?unread=1` for the unread), with the unread count; POST
    `{"ids": [...]}` (or nothing, for all) marks them read."""

    queryset = Notification.objects
    read_role = Role.VIEWER
    write_role = Role.VIEWER
    read_scope = None
    write_scope = None

    @extend_schema(responses=s.NotificationSerializer(many=True))
    def get(self, request):
        queryset = (
            self.get_queryset()
            .filter(user=request.user)
            .exclude(data__contains={"in_app": False})
            .order_by("-created_at", "-id")
        )
        if request.query_params.get("unread") in ("1", "true"):
            queryset = queryset.filter(read_at__isnull=True)
        return Response(
            {
                "unread": unread_count(organization_id=request.organization.pk, user_id=request.user.pk),
                "results": s.NotificationSerializer(queryset[:100], many=True).data,
            }
        )

    @extend_schema(request=dict, responses=dict)
    def post(self, request):
        ids = request.data.get("ids") if isinstance(request.data, dict) else None
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) for i in ids)):
            raise ValidationError({"ids": ["A list of notification ids."]})
        changed = notifications_mark_read(organization=request.organization, user=request.user, ids=ids)
        return Response(
            {
                "marked_read": changed,
                "unread": unread_count(organization_id=request.organization.pk, user_id=request.user.pk),
            }
        )


class NotificationPreferencesView(OrganizationScopedAPIView):
    """The caller's choice for every event and channel (defaults included); PUT a list to change some."""

    queryset = Notification.objects
    read_role = Role.VIEWER
    write_role = Role.VIEWER
    read_scope = None
    write_scope = None

    def _current(self, request):
        from ..constants import NotificationChannel, NotificationEvent

        preferences = preferences_of(organization_id=request.organization.pk, user_ids=[request.user.pk])
        return [
            {
                "event": event,
                "channel": channel,
                "enabled": wants(preferences, user_id=request.user.pk, event=event, channel=channel),
            }
            for event in NotificationEvent.values
            for channel in NotificationChannel.values
        ]

    @extend_schema(responses=s.NotificationPreferenceSerializer(many=True))
    def get(self, request):
        return Response(self._current(request))

    @extend_schema(
        request=s.NotificationPreferenceSerializer(many=True), responses=s.NotificationPreferenceSerializer(many=True)
    )
    def put(self, request):
        serializer = s.NotificationPreferenceSerializer(data=request.data, many=True)
        serializer.is_valid(raise_exception=True)
        preferences_set(
            organization=request.organization,
            user=request.user,
            choices={(row["event"], row["channel"]): row["enabled"] for row in serializer.validated_data},
        )
        return Response(self._current(request))


class MessagingSettingsView(OrganizationScopedAPIView):
    """The organization's channels, numbers, quiet hours, speed-to-lead target and AI budget (admins change them)."""

    queryset = Notification.objects
    read_role = Role.MANAGER
    write_role = Role.ADMIN

    @extend_schema(responses=s.MessagingSettingsSerializer)
    def get(self, request):
        return Response(s.MessagingSettingsSerializer(messaging_settings_for(request.organization.pk)).data)

    @extend_schema(request=s.MessagingSettingsSerializer, responses=s.MessagingSettingsSerializer)
    def patch(self, request):
        row = messaging_settings_for(request.organization.pk)
        serializer = s.MessagingSettingsSerializer(row, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        token = data.pop("meta_access_token", None)
        row = messaging_settings_update(
            organization=request.organization,
            actor=_actor(request),
            request=request,
            meta_access_token=token or None,
            **data,
        )
        return Response(s.MessagingSettingsSerializer(row).data)
