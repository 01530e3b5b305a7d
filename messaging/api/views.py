from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.constants import Role
from leadflow.api.viewsets import OrganizationScopedViewSet

from .. import selectors
from ..models import UsageRecord
from ..services.metering import usage_markup_set
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
