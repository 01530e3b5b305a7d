"""A category's field schema as a Django form: the one builder behind every page that collects a campaign's fields
(the leads "manual add" page and hosted web forms).

Each field of the schema becomes a form field with the widget its type calls for (text, email, tel, number, a
select for a choice, date, a checkbox), the schema's required flag and its label. The form parses what was typed
into the types the schema wants (a number is a number, a date ISO text, a checkbox true or false), then checks the
result with the very function the intake checks ``Lead.custom`` with (``validate_custom_fields`` over
``category_json_schema``), so a page and the supplier API accept and refuse the same values. The intake checks the
stored submission again (its context names the campaign): what the page accepted is what a replay accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms

from leads.intake.custom_fields import validate_custom_fields

from .constants import FieldType
from .schema import category_json_schema

CUSTOM_PREFIX = "custom"
CUSTOM_ERROR_PREFIX = "custom."  # how the intake names a custom field's errors: ``custom.<name>``
TEXT_MAX_LENGTH = 1000


def schema_fields_shown(fields: list[dict[str, Any]], *, optional: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The schema's fields a form shows: every required one, and of the others those named in ``optional`` (all of
    them when ``optional`` is ``None``). Schema order is kept."""
    chosen = None if optional is None else set(optional)
    return [field for field in fields if field.get("required") or chosen is None or field["name"] in chosen]


def optional_schema_fields(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields a form builder may leave out (required ones always appear)."""
    return [field for field in fields if not field.get("required")]


def _form_field(field: dict[str, Any]) -> forms.Field:
    kind = field["type"]
    label = field.get("label") or field["name"]
    required = bool(field.get("required"))
    if kind == FieldType.EMAIL:
        return forms.EmailField(label=label, required=required, max_length=254)
    if kind == FieldType.PHONE:
        return forms.CharField(
            label=label, required=required, max_length=40, widget=forms.TextInput(attrs={"type": "tel"})
        )
    if kind == FieldType.NUMBER:
        return forms.DecimalField(label=label, required=required, widget=forms.NumberInput(attrs={"step": "any"}))
    if kind == FieldType.DATE:
        return forms.DateField(label=label, required=required, widget=forms.DateInput(attrs={"type": "date"}))
    if kind == FieldType.CHOICE:
        choices = [(choice, choice) for choice in field["choices"]]
        return forms.ChoiceField(label=label, required=required, choices=[("", "—"), *choices])
    if kind == FieldType.BOOLEAN:
        # A checkbox always answers (unticked is false), which is what "required" asks of a yes/no field; Django's
        # required checkbox would mean "must be ticked" instead.
        return forms.BooleanField(label=label, required=False)
    return forms.CharField(label=label, required=required, max_length=TEXT_MAX_LENGTH)


def _json_value(kind: str, value: Any) -> Any:
    if kind == FieldType.NUMBER and isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if kind == FieldType.DATE:
        return value.isoformat()
    return value


class CategoryFieldsForm(forms.Form):
    """The fields of a category (or the part of it a hosted form shows), named ``custom-<name>`` on the page."""

    def __init__(
        self,
        data=None,
        *,
        schema_fields: list[dict[str, Any]],
        legend: str = "",
        prefix: str = CUSTOM_PREFIX,
        **kwargs,
    ):
        super().__init__(data, prefix=prefix, **kwargs)
        self.legend = legend
        self.schema_fields = list(schema_fields)
        self.field_types = {field["name"]: field["type"] for field in self.schema_fields}
        for field in self.schema_fields:
            self.fields[field["name"]] = _form_field(field)
        # The intake's errors (``custom.age``) land on the field they name (``leads.forms.add_errors``).
        self.error_aliases = {f"{CUSTOM_ERROR_PREFIX}{name}": name for name in self.field_types}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        schema = category_json_schema(self.schema_fields)
        for path, message in validate_custom_fields(self.custom_values(), schema):
            name = path.split(".", 1)[0]
            self.add_error(name if name in self.fields else None, message)
        return cleaned

    def custom_values(self) -> dict[str, Any]:
        """``Lead.custom`` as the schema types it; fields left empty are left out (booleans always answer)."""
        values = {}
        for name, kind in self.field_types.items():
            value = self.cleaned_data.get(name)
            if value is None or value == "":
                continue
            values[name] = _json_value(kind, value)
        return values


def campaign_fields_form(campaign, data=None, *, optional: Iterable[str] | None = None) -> CategoryFieldsForm | None:
    """The form of ``campaign``'s category fields (``optional`` narrows the optional ones, as a hosted form's
    builder chose), or ``None`` when there is no campaign or its category has no fields."""
    if campaign is None:
        return None
    shown = schema_fields_shown(campaign.category.fields or [], optional=optional)
    if not shown:
        return None
    return CategoryFieldsForm(data, schema_fields=shown, legend=campaign.category.name)


def split_intake_errors(errors: dict[str, list[str]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The intake's field errors as (the custom fields', everything else's), for a page with both forms."""
    custom = {key: value for key, value in errors.items() if key.startswith(CUSTOM_ERROR_PREFIX)}
    return custom, {key: value for key, value in errors.items() if key not in custom}
