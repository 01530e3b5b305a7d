"""Support tickets over the API, for members signed in (session or token); API keys are refused: tickets come from
people. Views parse input and call one service; visibility is ``tickets_visible_to``, inside the tenant scope."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from accounts.constants import Role
from leadflow.api.viewsets import OrganizationScopedViewSet

from .. import selectors, services
from ..constants import TicketStatus
from ..models import SupportTicket, TicketMessage
from .serializers import (
    SupportTicketDetailSerializer,
    SupportTicketSerializer,
    TicketOpenSerializer,
    TicketReplySerializer,
)


class SupportTicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """The organization's support tickets (admins and owners see all, other members their own)."""

    queryset = SupportTicket.objects
    serializer_class = SupportTicketSerializer
    read_role = Role.VIEWER
    write_role = Role.VIEWER
    read_scope = None
    write_scope = None
    filterset_fields = ["status", "category"]
    ordering_fields = ["last_message_at", "created_at"]
    search_fields = ["subject"]

    def safely_get_queryset(self, queryset):
        visible = selectors.tickets_visible_to(self.request.membership, queryset)
        if self.action == "retrieve":
            thread = TicketMessage.objects.select_related("author").order_by("created_at", "id")
            visible = visible.prefetch_related(Prefetch("messages", queryset=thread))
        return visible

    def get_serializer_class(self):
        return SupportTicketDetailSerializer if self.action == "retrieve" else SupportTicketSerializer

    def _detail(self, ticket, code=status.HTTP_200_OK):
        ticket = (
            self.safely_get_queryset(SupportTicket.objects.all()).prefetch_related("messages__author").get(pk=ticket.pk)
        )
        return Response(SupportTicketDetailSerializer(ticket).data, status=code)

    @extend_schema(request=TicketOpenSerializer, responses={201: SupportTicketDetailSerializer})
    def create(self, request):
        """Open a ticket; LeadFlow's support team is emailed."""
        serializer = TicketOpenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = services.ticket_open(
            organization=request.organization, author=request.user, request=request, **serializer.validated_data
        )
        return self._detail(ticket, status.HTTP_201_CREATED)

    @extend_schema(request=TicketReplySerializer, responses={201: SupportTicketDetailSerializer})
    @action(detail=True, methods=["post"])
    def replies(self, request, pk=None):
        """Answer on the ticket (a closed ticket reopens)."""
        ticket = self.get_object()
        serializer = TicketReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.ticket_reply_by_member(
            ticket=ticket, author=request.user, body=serializer.validated_data["body"], request=request
        )
        return self._detail(ticket, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=SupportTicketDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        ticket = services.ticket_set_status(
            ticket=self.get_object(), status=TicketStatus.CLOSED, actor=request.user, request=request
        )
        return self._detail(ticket)

    @extend_schema(request=None, responses=SupportTicketDetailSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        ticket = services.ticket_set_status(
            ticket=self.get_object(), status=TicketStatus.OPEN, actor=request.user, request=request
        )
        return self._detail(ticket)


router = DefaultRouter(trailing_slash=True)
router.register("support/tickets", SupportTicketViewSet, basename="support-ticket")
urlpatterns = router.urls
