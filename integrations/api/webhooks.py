"""API of outbound webhooks: endpoints (CRUD, rotate secret, send a test, their deliveries) and deliveries (list
with attempts, replay). Views parse input and call one service; the services own audit, validation and sending."""

from __future__ import annotations

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from accounts.constants import Role
from leadflow.api.viewsets import OrganizationModelViewSet, OrganizationScopedViewSet

from ..constants import WebhookDeliveryStatus, WebhookEndpointPurpose, WebhookEventType
from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ..selectors import webhooks as selectors
from ..services import webhooks as services

# Serializers --------------------------------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEventType.choices), allow_empty=False)
    secret_hint = serializers.CharField(read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "is_active",
            "secret_hint",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "consecutive_failures",
            "last_success_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "consecutive_failures",
            "last_success_at",
            "created_at",
            "updated_at",
        ]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """Answers create and rotate-secret only: the one time the secret is shown."""

    secret = serializers.CharField(read_only=True)

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "trigger",
            "started_at",
            "status_code",
            "latency_ms",
            "response_excerpt",
            "error",
            "succeeded",
        ]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="message.event_type", read_only=True)
    message_id = serializers.CharField(source="message.message_id", read_only=True)
    endpoint_url = serializers.CharField(source="endpoint.url", read_only=True)
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "endpoint_url",
            "event_type",
            "message_id",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_latency_ms",
            "last_error",
            "delivered_at",
            "created_at",
            "attempts",
        ]
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    payload = serializers.JSONField(source="message.payload", read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "payload"]
        read_only_fields = fields


# Views --------------------------------------------------------------------------------------------------------------


class DeliveryCursorPagination(CursorPagination):
    """Delivery logs grow without bound: keyset pages, no COUNT(*)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-created_at", "-id")


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.NumberFilter(field_name="endpoint_id")
    status = django_filters.ChoiceFilter(choices=WebhookDeliveryStatus.choices)
    event_type = django_filters.CharFilter(field_name="message__event_type")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type"]


class WebhookEndpointViewSet(OrganizationModelViewSet):
    """URLs the organization's events are posted to, signed with Standard Webhooks headers."""

    queryset = WebhookEndpoint.objects
    serializer_class = WebhookEndpointSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filter_backends: list = []

    def safely_get_queryset(self, queryset):
        return queryset.filter(purpose=WebhookEndpointPurpose.SUBSCRIPTION)

    @extend_schema(responses={201: WebhookEndpointWithSecretSerializer})
    def create(self, request, *args, **kwargs):
        """Subscribe a URL. The answer carries the signing secret; it is not shown again (rotate to get a new one)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(
            organization=request.organization, actor=_actor(request), request=request, **serializer.validated_data
        )
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        serializer = self.get_serializer(endpoint, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(
            endpoint=endpoint, actor=_actor(request), request=request, **serializer.validated_data
        )
        return Response(self.get_serializer(endpoint).data)

    def perform_destroy(self, instance):
        services.webhook_endpoint_delete(endpoint=instance, actor=_actor(self.request), request=self.request)

    @extend_schema(request=None, responses=WebhookEndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret. For 24 hours requests carry a second signature made with the old one."""
        endpoint = services.webhook_endpoint_rotate_secret(
            endpoint=self.get_object(), actor=_actor(request), request=request
        )
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a `webhook.test` event to this endpoint now; the delivery and its attempts are logged as usual."""
        delivery = services.webhook_endpoint_send_test(
            endpoint=self.get_object(), actor=_actor(request), request=request
        )
        delivery = selectors.webhook_deliveries().get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """This endpoint's deliveries, newest first, each with its attempts."""
        endpoint = self.get_object()
        paginator = DeliveryCursorPagination()
        page = paginator.paginate_queryset(selectors.webhook_deliveries(endpoint=endpoint), request, view=self)
        return paginator.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Every delivery of every endpoint with its attempts (status code, latency, response excerpt, error)."""

    queryset = WebhookDelivery.objects
    serializer_class = WebhookDeliverySerializer
    pagination_class = DeliveryCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = WebhookDeliveryFilter
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def safely_get_queryset(self, queryset):
        return selectors.webhook_deliveries(queryset=queryset)

    def get_serializer_class(self):
        return WebhookDeliveryDetailSerializer if self.action == "retrieve" else WebhookDeliverySerializer

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Send this delivery again now, with the same `webhook-id`. Asking twice before it goes out sends once."""
        delivery = services.webhook_delivery_replay(delivery=self.get_object(), actor=_actor(request), request=request)
        delivery = selectors.webhook_deliveries().get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


def _actor(request):
    return request.user if request.user.is_authenticated else None


router = DefaultRouter(trailing_slash=True)
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
urlpatterns = router.urls
