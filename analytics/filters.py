"""The date range and filters of every report: one form, read by the pages and the API alike.

Dates are calendar days of the organization's time zone, both ends included. A preset ("30d", "this_month" …)
fills the range; ``date_from``/``date_to`` given with no preset are a custom range.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership
from leads.constants import LeadSource
from messaging.constants import MessageChannel

from .selectors import GRANULARITIES, ReportFilters

PRESETS = [
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("this_year", "This year"),
    ("12m", "Last 12 months"),
    ("custom", "Custom"),
]
DEFAULT_PRESET = "30d"
MAX_RANGE_DAYS = 3 * 366
# Daily series are read from day rows: beyond these the chart is unreadable and the read slower, so ask for a
# coarser granularity (months are read from month rows and have no limit beyond the range's).
MAX_DAYS_FOR_GRANULARITY = {"day": 92, "week": 371}


def preset_range(preset: str, today: date) -> tuple[date, date]:
    if preset == "today":
        return today, today
    if preset in ("7d", "30d", "90d"):
        return today - timedelta(days=int(preset[:-1]) - 1), today
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if preset == "this_year":
        return today.replace(month=1, day=1), today
    if preset == "12m":
        start = today.replace(day=1)
        for _ in range(11):
            start = (start - timedelta(days=1)).replace(day=1)
        return start, today
    raise ValueError(preset)


def _id_choices(queryset, empty_label: str = "All") -> list[tuple[str, str]]:
    return [("", empty_label), *((str(pk), name) for pk, name in queryset)]


class ReportFilterForm(forms.Form):
    """Built for one report (``report.filters`` names the fields it shows) and one organization (the choices)."""

    preset = forms.ChoiceField(choices=PRESETS, required=False)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    granularity = forms.ChoiceField(choices=[(g, g.title()) for g in GRANULARITIES], required=False)
    group_by = forms.ChoiceField(choices=[("", "Nothing")], required=False, label="Break down by")
    source = forms.ChoiceField(choices=[("", "All"), *LeadSource.choices], required=False)
    campaign = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    stage = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    owner = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    buyer = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    supplier = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    channel = forms.ChoiceField(choices=[("", "All"), *MessageChannel.choices], required=False)

    def __init__(self, data=None, *, report, organization, **kwargs):
        super().__init__(data, **kwargs)
        self.report = report
        self.organization = organization
        for name in list(self.fields):
            if name not in ("preset", "date_from", "date_to") and name not in report.filters:
                del self.fields[name]
        if "group_by" in self.fields:
            self.fields["group_by"].choices = report.group_by_choices
        self._fill_choices()

    def _fill_choices(self) -> None:
        from campaigns.models import Buyer, Campaign, Supplier
        from leads.models import PipelineStage

        lookups = {
            "campaign": lambda: Campaign.objects.order_by("name").values_list("pk", "name"),
            "stage": lambda: PipelineStage.objects.order_by("position", "id").values_list("pk", "name"),
            "buyer": lambda: Buyer.objects.order_by("name").values_list("pk", "name"),
            "supplier": lambda: Supplier.objects.order_by("name").values_list("pk", "name"),
        }
        for name, lookup in lookups.items():
            if name in self.fields:
                choices = _id_choices(lookup())
                if name == "campaign" and self.report.leads_without_campaign:
                    choices.insert(1, ("0", "No campaign"))
                self.fields[name].choices = choices
        if "owner" in self.fields:
            people = (
                Membership.objects.exclude(role=Role.VIEWER)
                .select_related("user")
                .order_by("user__first_name", "user__email")
            )
            self.fields["owner"].choices = [
                ("", "All"),
                ("0", "Unassigned"),
                *((str(m.user_id), m.user.display_name) for m in people),
            ]

    def today(self) -> date:
        return timezone.now().astimezone(ZoneInfo(self.organization.timezone)).date()

    def clean(self):
        data = super().clean()
        preset = data.get("preset") or ""
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if preset in ("", "custom") and (date_from or date_to):
            if not (date_from and date_to):
                raise forms.ValidationError({"date_to" if date_from else "date_from": "Give both ends of the range."})
            data["preset"] = "custom"
        else:
            data["preset"] = preset if preset not in ("", "custom") else DEFAULT_PRESET
            data["date_from"], data["date_to"] = preset_range(data["preset"], self.today())
        date_from, date_to = data["date_from"], data["date_to"]
        if date_to < date_from:
            raise forms.ValidationError({"date_to": "The range ends before it starts."})
        if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
            raise forms.ValidationError({"date_from": f"A range covers at most {MAX_RANGE_DAYS} days."})
        if "granularity" in self.fields:
            granularity = data.get("granularity") or self.default_granularity(date_from, date_to)
            limit = MAX_DAYS_FOR_GRANULARITY.get(granularity)
            if limit and (date_to - date_from).days + 1 > limit:
                label = {"day": "Daily", "week": "Weekly"}[granularity]
                raise forms.ValidationError(
                    {"granularity": f"{label} figures cover at most {limit} days; pick a coarser one."}
                )
            data["granularity"] = granularity
        return data

    @staticmethod
    def default_granularity(date_from: date, date_to: date) -> str:
        days = (date_to - date_from).days + 1
        return "day" if days <= 62 else "week" if days <= 190 else "month"

    def report_filters(self) -> ReportFilters:
        data = self.cleaned_data
        return ReportFilters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            granularity=data.get("granularity") or "day",
            group_by=data.get("group_by") or "",
            source=data.get("source") or "",
            campaign=data.get("campaign"),
            stage=data.get("stage"),
            owner=data.get("owner"),
            buyer=data.get("buyer"),
            supplier=data.get("supplier"),
            channel=data.get("channel") or "",
        )
