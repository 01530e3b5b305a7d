"""The lead filters the API, the list page and the CSV export share."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from accounts.models import User
from leadflow.filters import FilterSet

from .constants import Grade, LeadSource
from .models import Lead
from .selectors import lead_search, requested_tags


class IdListField(forms.Field):
    """Repeated ``?name=1&name=2`` ids, as integers."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        try:
            return [int(item) for item in value or [] if str(item).strip()]
        except (TypeError, ValueError):
            raise forms.ValidationError("Enter ids (whole numbers).", code="invalid") from None


class IdListFilter(django_filters.Filter):
    """Rows whose ``field_name`` is any of the ids. The ids are not looked up: an id of another organization's row
    matches none of this organization's rows (the queryset is already scoped), so checking costs a query for
    nothing."""

    field_class = IdListField

    def filter(self, qs, value):
        return qs.filter(**{f"{self.field_name}__in": value}) if value else qs


class LeadFilter(FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search")
    # distinct=False: one lead matches a value at most once, and DISTINCT would make PostgreSQL sort the whole
    # filtered table instead of reading the newest rows from an index.
    stage = IdListFilter(field_name="stage_id", help_text="Pipeline stage ids; repeat for several")
    source = django_filters.MultipleChoiceFilter(choices=LeadSource.choices, distinct=False)
    owner = django_filters.CharFilter(
        method="filter_owner", help_text="A user id, `me`, or `none` for the unassigned queue"
    )
    tag = django_filters.CharFilter(field_name="tags", lookup_expr="contains", method="filter_tag")
    campaign = django_filters.CharFilter(
        method="filter_campaign", help_text="utm_campaign or the ad platform's campaign id"
    )
    grade = django_filters.MultipleChoiceFilter(choices=Grade.choices, distinct=False)
    score_min = django_filters.NumberFilter(field_name="score", lookup_expr="gte")
    score_max = django_filters.NumberFilter(field_name="score", lookup_expr="lte")
    received_after = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="lt")
    state = django_filters.CharFilter(field_name="state", lookup_expr="iexact")
    country = django_filters.CharFilter(field_name="country", lookup_expr="iexact")
    has_phone = django_filters.BooleanFilter(method="filter_has", field_name="phone")
    has_email = django_filters.BooleanFilter(method="filter_has", field_name="email")
    duplicates = django_filters.ChoiceFilter(
        method="filter_duplicates", choices=[("exclude", "Hide duplicates"), ("only", "Only duplicates")]
    )
    over_quota = django_filters.BooleanFilter()

    class Meta:
        model = Lead
        fields: list[str] = []

    def get_form_class(self):
        # django-filter builds the form class (a field, a label and deep copies per filter) on every request; none
        # of these filters depends on the request, so it is built once per class.
        cls = type(self)
        if "_form_class" not in cls.__dict__:
            cls._form_class = super().get_form_class()
        return cls._form_class

    def filter_search(self, queryset, name, value):
        return lead_search(queryset, value)

    def filter_owner(self, queryset, name, value):
        value = value.strip().lower()
        if value == "none":
            return queryset.filter(owner__isnull=True)
        if value == "me":
            user = getattr(self.request, "user", None)
            return queryset.filter(owner_id=user.pk if isinstance(user, User) else None)
        if value.isdigit():
            return queryset.filter(owner_id=int(value))
        return queryset.none()

    def filter_tag(self, queryset, name, value):
        tags = requested_tags(value)
        return queryset.filter(tags__contains=tags) if tags else queryset

    def filter_campaign(self, queryset, name, value):
        return queryset.filter(Q(utm_campaign=value) | Q(ad_campaign_id=value))

    def filter_has(self, queryset, name, value):
        return queryset.exclude(**{name: ""}) if value else queryset.filter(**{name: ""})

    def filter_duplicates(self, queryset, name, value):
        if value == "exclude":
            return queryset.filter(duplicate_of__isnull=True)
        if value == "only":
            return queryset.filter(duplicate_of__isnull=False)
        return queryset
