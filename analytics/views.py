"""The analytics pages: one tab per report, the filters on top, the chart, the table and its CSV."""

from __future__ import annotations

import json
from decimal import Decimal

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.constants import Role
from leadflow.tenancy.views import OrganizationRequiredMixin

from .filters import ReportFilterForm
from .reports import REPORTS, csv_filename, report_csv, table_cells
from .selectors import rollups_as_of

REPORT_TARGET = "report"


class AnalyticsMixin(OrganizationRequiredMixin):
    # Revenue, spend and every member's figures: managers and above, as campaigns are.
    required_role = Role.MANAGER

    def spec(self, name: str):
        spec = REPORTS.get(name)
        if spec is None:
            raise Http404("No such report")
        return spec

    def form(self, request, spec) -> ReportFilterForm:
        # Always bound: no parameters at all is the default range (every field is optional).
        return ReportFilterForm(request.GET, report=spec, organization=request.organization)


class AnalyticsHomeView(AnalyticsMixin, View):
    def get(self, request):
        return redirect("analytics:report", name="leads")


def _chart_json(chart: dict) -> str:
    return json.dumps(chart, default=lambda value: float(value) if isinstance(value, Decimal) else str(value))


def _as_understood(form: ReportFilterForm):
    """The form shows the range and granularity it applied (a preset's dates, the default granularity), so the
    next change starts from what is on screen."""
    data = form.data.copy()
    cleaned = form.cleaned_data
    data["preset"] = cleaned["preset"]
    data["date_from"], data["date_to"] = cleaned["date_from"].isoformat(), cleaned["date_to"].isoformat()
    if cleaned.get("granularity"):
        data["granularity"] = cleaned["granularity"]
    return data


class ReportView(AnalyticsMixin, View):
    def get(self, request, name: str):
        spec = self.spec(name)
        form = self.form(request, spec)
        report = None
        if form.is_valid():
            report = spec.selector(form.report_filters())
            form.data = _as_understood(form)
        context = {
            "spec": spec,
            "reports": REPORTS.values(),
            "form": form,
            "report": report,
            "rows": [table_cells(report, row) for row in report.rows] if report else [],
            "totals": table_cells(report, report.totals, first="Total") if report and report.totals else [],
            "chart": _chart_json(report.chart) if report else "{}",
            "query": form.data.urlencode(),
            "as_of": rollups_as_of(),
        }
        partial = bool(request.htmx) and not request.htmx.history_restore_request
        template = "analytics/partials/report.html" if partial else "analytics/pages/report.html"
        return render(request, template, context, status=200 if report else 400)


class ReportCsvView(AnalyticsMixin, View):
    def get(self, request, name: str):
        spec = self.spec(name)
        form = self.form(request, spec)
        if not form.is_valid():
            return HttpResponse(
                "\n".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()),
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        filters = form.report_filters()
        report = spec.selector(filters)
        response = HttpResponse("".join(report_csv(report)), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{csv_filename(report, filters, request.organization)}"'
        )
        return response
