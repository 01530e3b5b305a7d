"""The yardstick for the ingest API: the least a DRF create endpoint does, served by the same gunicorn.

It authenticates the same API key (an `ingest` key, one lookup), is throttled by the same per-key throttle, validates
with a plain ``ModelSerializer`` and inserts one row into the same ``leads_lead`` table with the same indexes and
generated search columns — but none of the intake pipeline: no stored submission, no normalization, no dedupe
locks or lookups, no timeline entry, no outbox event, no task. ``ingest ÷ minimal`` is what the pipeline costs.
"""

from __future__ import annotations

from functools import cache

from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.constants import ApiKeyScope
from accounts.models import ApiKey
from leadflow.tenancy.context import organization_scope
from leads.constants import LeadSource, StageKind
from leads.models import Lead, PipelineStage


class MinimalLeadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lead
        fields = ["id", "first_name", "last_name", "email", "phone", "company"]


class IngestKeyRequired(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey) and request.auth.has_scope(ApiKeyScope.INGEST)


@cache
def _first_open_stage_id(organization_id: int) -> int:
    # Looked up once per process: the yardstick pays for exactly one INSERT per request.
    return (
        PipelineStage.objects.unscoped()
        .filter(organization_id=organization_id, kind=StageKind.OPEN)
        .order_by("position", "id")
        .values_list("id", flat=True)[0]
    )


class MinimalLeadCreate(APIView):
    permission_classes = [IngestKeyRequired]

    def post(self, request):
        serializer = MinimalLeadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = request.auth.organization
        with organization_scope(organization):
            serializer.save(
                organization=organization, source=LeadSource.API, stage_id=_first_open_stage_id(organization.pk)
            )
        return Response(serializer.data, status=status.HTTP_201_CREATED)
