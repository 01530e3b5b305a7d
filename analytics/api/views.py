"""``/api/v1/analytics/<report>/``: every report of ``analytics.reports`` with the pages' filters, as JSON or, with
``?format=csv``, as the same CSV the pages download. Managers and above, or an API key with the read scope."""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from accounts.constants import Role
from leadflow.api.viewsets import OrganizationScopedAPIView

from ..filters import PRESETS, ReportFilterForm
from ..models import RollupState
from ..reports import REPORTS, ReportSpec, csv_filename, report_csv
from ..selectors import GRANULARITIES, rollups_as_of


class CSVRenderer(BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; the view writes the CSV itself (errors come as text)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str | bytes):
            return data
        errors = (data or {}).get("errors") or {}
        lines = [str((data or {}).get("detail", ""))]
        lines += [f"{field}: {' '.join(map(str, messages))}" for field, messages in errors.items()]
        return "\n".join(line for line in lines if line)


class ColumnSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()


class ReportResponseSerializer(serializers.Serializer):
    report = serializers.CharField()
    title = serializers.CharField()
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    timezone = serializers.CharField()
    filters = serializers.DictField(help_text="The filters applied, as understood")
    columns = ColumnSerializer(many=True)
    rows = serializers.ListField(child=serializers.DictField(), help_text="One object per table row, keyed as columns")
    totals = serializers.DictField()
    chart = serializers.DictField(help_text='{"type", "labels", "datasets": [{"label", "data"}]}')
    notes = serializers.ListField(child=serializers.CharField())
    as_of = serializers.DateTimeField(allow_null=True, help_text="When the rollups were last refreshed")


def _plain(value):
    """Money as strings (exact), everything else as JSON has it."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


FILTER_HELP = {
    "granularity": ("day, week or month", OpenApiTypes.STR, list(GRANULARITIES)),
    "group_by": ("break the figures down by this dimension", OpenApiTypes.STR, None),
    "source": ("a lead source (api, facebook, …)", OpenApiTypes.STR, None),
    "campaign": ("a campaign id (0: leads of no campaign, where it applies)", OpenApiTypes.INT, None),
    "stage": ("a pipeline stage id", OpenApiTypes.INT, None),
    "owner": ("a member's user id (0: unassigned)", OpenApiTypes.INT, None),
    "buyer": ("a buyer id", OpenApiTypes.INT, None),
    "supplier": ("a supplier id", OpenApiTypes.INT, None),
    "channel": ("whatsapp, sms or email", OpenApiTypes.STR, None),
}


def _parameters(spec: ReportSpec) -> list[OpenApiParameter]:
    parameters = [
        OpenApiParameter("preset", OpenApiTypes.STR, enum=[p for p, _ in PRESETS], description="default 30d"),
        OpenApiParameter("date_from", OpenApiTypes.DATE, description="first day (organization's time zone)"),
        OpenApiParameter("date_to", OpenApiTypes.DATE, description="last day, included"),
        OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
    ]
    for name in spec.filters:
        description, kind, enum = FILTER_HELP[name]
        if name == "group_by":
            enum = [value for value, _ in spec.group_by_choices if value]
        parameters.append(OpenApiParameter(name, kind, enum=enum, description=description))
    return parameters


class AnalyticsReportView(OrganizationScopedAPIView):
    queryset = RollupState.objects
    read_role = Role.MANAGER
    renderer_classes = [JSONRenderer, CSVRenderer]
    spec: ReportSpec

    def get(self, request):
        form = ReportFilterForm(request.query_params, report=self.spec, organization=request.organization)
        if not form.is_valid():
            raise ValidationError({field: list(errors) for field, errors in form.errors.items()})
        filters = form.report_filters()
        report = self.spec.selector(filters)
        if request.accepted_renderer.format == "csv":
            response = HttpResponse("".join(report_csv(report)), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = (
                f'attachment; filename="{csv_filename(report, filters, request.organization)}"'
            )
            return response
        applied = {name: getattr(filters, name) for name in self.spec.filters}
        return Response(
            {
                "report": report.name,
                "title": report.title,
                "date_from": filters.date_from,
                "date_to": filters.date_to,
                "timezone": request.organization.timezone,
                "filters": applied,
                "columns": [{"key": key, "label": label} for key, label in report.columns],
                "rows": _plain(report.rows),
                "totals": _plain(report.totals),
                "chart": _plain(report.chart),
                "notes": report.notes,
                "as_of": rollups_as_of(),
            }
        )


def _view_for(spec: ReportSpec) -> type[AnalyticsReportView]:
    """One documented endpoint per report (its own operation and parameters in the schema)."""

    def get(self, request):
        return AnalyticsReportView.get(self, request)

    get = extend_schema(
        operation_id=f"analytics_{spec.name}",
        summary=spec.title,
        description=spec.description,
        parameters=_parameters(spec),
        responses={
            200: OpenApiResponse(ReportResponseSerializer, description="JSON; text/csv with ?format=csv"),
        },
        tags=["analytics"],
    )(get)
    name = "".join(part.title() for part in spec.name.split("_")) + "ReportView"
    return type(name, (AnalyticsReportView,), {"spec": spec, "get": get, "__doc__": spec.description})


REPORT_VIEWS = {name: _view_for(spec) for name, spec in REPORTS.items()}
