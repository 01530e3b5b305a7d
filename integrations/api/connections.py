"""API of inbound connections: list them with their health, create, rename and map, send a test, read their recent
raw payloads, disconnect. Credentials are never returned (except a Google Ads key, which the user pastes into
Google). Views parse input and call one service."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import DefaultRouter

from accounts.constants import Role
from leadflow.api.viewsets import OrganizationScopedViewSet
from leads.api.serializers import SubmissionSerializer

from ..constants import IntegrationProvider
from ..models import IntegrationConnection
from ..selectors import connections as selectors
from ..services import connections as services
from ..services import inbound

RECENT_PAYLOADS = 50
INBOUND_ROUTES = {IntegrationProvider.WEBHOOK: "webhook-inbound", IntegrationProvider.GOOGLE_ADS: "webhook-google-ads"}


class IntegrationConnectionSerializer(serializers.ModelSerializer):
    inbound_url = serializers.SerializerMethodField()
    google_key = serializers.SerializerMethodField()
    signed = serializers.SerializerMethodField(help_text="Whether requests must carry X-LeadFlow-Signature")

    class Meta:
        model = IntegrationConnection
        fields = [
            "id",
            "provider",
            "name",
            "status",
            "settings",
            "inbound_url",
            "google_key",
            "signed",
            "external_account_id",
            "last_success_at",
            "last_error",
            "last_error_at",
            "consecutive_errors",
            "last_synced_at",
            "created_at",
        ]
        read_only_fields = [name for name in fields if name not in ("provider", "name", "settings")]

    def get_inbound_url(self, connection) -> str:
        route = INBOUND_ROUTES.get(connection.provider)
        return reverse(route, args=[connection.public_token], request=self.context.get("request")) if route else ""

    def get_google_key(self, connection) -> str:
        return connection.credential("google_key") if connection.provider == IntegrationProvider.GOOGLE_ADS else ""

    def get_signed(self, connection) -> bool:
        return bool(connection.credential("hmac_secret"))


class IntegrationConnectionCreateSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=[IntegrationProvider.WEBHOOK, IntegrationProvider.GOOGLE_ADS])
    name = serializers.CharField(max_length=120)
    settings = serializers.JSONField(required=False, default=dict)


class IntegrationConnectionUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    settings = serializers.DictField(required=False, help_text="For webhooks: {mapping: {field: path}, defaults}")


class IntegrationConnectionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrganizationScopedViewSet
):
    queryset = IntegrationConnection.objects
    serializer_class = IntegrationConnectionSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filter_backends: list = []

    @extend_schema(request=IntegrationConnectionCreateSerializer, responses={201: IntegrationConnectionSerializer})
    def create(self, request):
        serializer = IntegrationConnectionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connection = services.connection_create(
            organization=request.organization,
            actor=request.user if request.user.is_authenticated else None,
            request=request,
            **serializer.validated_data,
        )
        return Response(self.get_serializer(connection).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=IntegrationConnectionUpdateSerializer, responses=IntegrationConnectionSerializer)
    def partial_update(self, request, pk=None):
        connection = self.get_object()
        serializer = IntegrationConnectionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connection = services.connection_update(
            connection=connection,
            actor=request.user if request.user.is_authenticated else None,
            request=request,
            **serializer.validated_data,
        )
        return Response(self.get_serializer(connection).data)

    def perform_destroy(self, instance):
        """DELETE disconnects: the row and its health history stay, its URLs answer 404."""
        services.connection_disconnect(
            connection=instance,
            actor=self.request.user if self.request.user.is_authenticated else None,
            request=self.request,
        )

    @extend_schema(responses=SubmissionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def submissions(self, request, pk=None):
        """The connection's most recent raw payloads, with what became of each."""
        connection = self.get_object()
        recent = selectors.connection_submissions(connection=connection)[:RECENT_PAYLOADS]
        return Response(SubmissionSerializer(recent, many=True).data)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a sample lead through the connection (tagged test-lead), or check a Facebook page token."""
        result = inbound.connection_send_test(connection=self.get_object())
        return Response(
            {"ok": result.ok, "message": result.message},
            status=status.HTTP_200_OK if result.ok else status.HTTP_400_BAD_REQUEST,
        )


router = DefaultRouter(trailing_slash=True)
router.register("integrations/connections", IntegrationConnectionViewSet, basename="integration-connection")
urlpatterns = router.urls
