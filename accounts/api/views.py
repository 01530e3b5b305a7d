from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.constants import Role
from accounts.models import ApiKey, AuditEvent, Invitation, Membership
from leadflow.api.throttling import TokenObtainRateThrottle
from leadflow.api.viewsets import OrganizationScopedViewSet
from leads.services.assignment import agent_set_lead_settings

from .serializers import (
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    InvitationSerializer,
    MembershipOrganizationSerializer,
    MembershipSerializer,
    OrganizationSerializer,
    TokenObtainSerializer,
    TokenSerializer,
    UserSerializer,
)


class TokenView(APIView):
    """Exchange an email and password for an API token (``Authorization: Token …``); DELETE revokes it."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [TokenObtainRateThrottle]

    @extend_schema(request=TokenObtainSerializer, responses=TokenSerializer)
    def post(self, request):
        serializer = TokenObtainSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, _ = Token.objects.get_or_create(user=user)
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        return Response({"token": token.key})


class TokenRevokeView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The signed-in user and the organizations they belong to."""

    @extend_schema(responses=UserSerializer)
    def get(self, request):
        data = UserSerializer(request.user).data
        data["organizations"] = MembershipOrganizationSerializer(
            selectors.user_memberships(user=request.user), many=True
        ).data
        return Response(data)

    @extend_schema(request=UserSerializer, responses=UserSerializer)
    def patch(self, request):
        serializer = UserSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class CurrentOrganizationViewSet(OrganizationScopedViewSet):
    """The organization the request acts for (chosen by API key, `X-Organization` or the session)."""

    serializer_class = OrganizationSerializer
    filter_backends = []  # one object, not a table: nothing to filter or page
    pagination_class = None
    read_scope = "read"
    write_scope = None
    write_role = Role.ADMIN

    @extend_schema(responses=OrganizationSerializer)
    def list(self, request):
        return Response(OrganizationSerializer(request.organization, context={"membership": request.membership}).data)

    @extend_schema(request=OrganizationSerializer, responses=OrganizationSerializer)
    def partial_update(self, request, pk=None):
        serializer = OrganizationSerializer(request.organization, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        organization = services.organization_update(
            organization=request.organization, actor=request.user, request=request, **serializer.validated_data
        )
        return Response(OrganizationSerializer(organization, context={"membership": request.membership}).data)


class MemberViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationScopedViewSet,
):
    queryset = Membership.objects
    serializer_class = MembershipSerializer
    write_scope = None  # people, not integrations, manage the team
    # Anyone may leave (DELETE their own membership); removing someone else needs an admin, which the service checks.
    action_roles = {"destroy": Role.VIEWER}
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    filterset_fields = ["role"]
    ordering_fields = ["created_at", "role"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("user").order_by("created_at")

    @transaction.atomic
    def perform_update(self, serializer):
        data, membership = serializer.validated_data, serializer.instance
        if "role" in data:
            services.membership_change_role(
                membership=membership, role=data["role"], actor=self.request.membership, request=self.request
            )
        if {"receives_leads", "lead_capacity"} & set(data):
            agent_set_lead_settings(
                membership=Membership.objects.get(pk=membership.pk),
                actor=self.request.membership,
                receives_leads=data.get("receives_leads", membership.receives_leads),
                lead_capacity=data.get("lead_capacity", membership.lead_capacity),
                request=self.request,
            )
        serializer.instance.refresh_from_db()

    def perform_destroy(self, instance):
        services.membership_remove(membership=instance, actor=self.request.membership, request=self.request)


class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationScopedViewSet,
):
    """Invite people by email; DELETE revokes an open invitation."""

    queryset = Invitation.objects
    serializer_class = InvitationSerializer
    read_role = Role.ADMIN
    read_scope = None
    write_scope = None
    filterset_fields = ["role"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("invited_by").order_by("-created_at")

    def perform_create(self, serializer):
        serializer.instance = services.invitation_create(
            organization=self.request.organization,
            email=serializer.validated_data["email"],
            role=serializer.validated_data["role"],
            inviter=self.request.membership,
            request=self.request,
        )

    def perform_destroy(self, instance):
        services.invitation_revoke(invitation=instance, actor=self.request.membership, request=self.request)


class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationScopedViewSet,
):
    """API keys of the organization. The full key is in the create response only; DELETE revokes."""

    queryset = ApiKey.objects
    serializer_class = ApiKeySerializer
    read_role = Role.ADMIN
    read_scope = None
    write_scope = None

    def safely_get_queryset(self, queryset):
        return queryset.select_related("created_by").order_by("-created_at")

    @extend_schema(responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, raw_key = services.api_key_create(
            organization=request.organization,
            name=serializer.validated_data["name"],
            scopes=serializer.validated_data["scopes"],
            expires_at=serializer.validated_data.get("expires_at"),
            created_by=request.user,
            request=request,
        )
        api_key.key = raw_key
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_key_revoke(api_key=instance, actor=self.request.user, request=self.request)


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = AuditEvent.objects
    serializer_class = AuditEventSerializer
    read_role = Role.ADMIN
    read_scope = None
    filterset_fields = ["action"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("actor_user", "actor_api_key")
