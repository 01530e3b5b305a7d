"""A category's custom field schema: the list of fields its campaigns collect, validated whenever it is saved.

The same list becomes a JSON Schema (``category_json_schema``) that the intake checks ``Lead.custom`` with for leads
posted to the category's campaigns (``campaigns.intake.category_schema_for_submission``, registered through
``leads.intake.custom_fields.register_schema_provider``).
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

from .constants import (
    CATEGORY_FIELD_NAME_PATTERN,
    MAX_CATEGORY_FIELDS,
    MAX_SUBSCRIPTION_FILTERS,
    FieldType,
    FilterOperator,
)

_FIELD_NAME = re.compile(CATEGORY_FIELD_NAME_PATTERN)
_FIELD_KEYS = {"name", "label", "type", "required", "choices"}
_FILTER_KEYS = {"field", "operator", "value"}
# Operators that compare nothing: their value is ignored.
_VALUELESS_OPERATORS = {FilterOperator.IS_SET, FilterOperator.IS_EMPTY}


def field_schema_errors(fields: Any) -> list[str]:
    """Every problem with a category's field list, as messages that name the field at fault."""
    if not isinstance(fields, list):
        return ["The field schema must be a list of fields."]
    if len(fields) > MAX_CATEGORY_FIELDS:
        return [f"A category can have at most {MAX_CATEGORY_FIELDS} fields."]
    errors: list[str] = []
    seen: set[str] = set()
    for index, field in enumerate(fields):
        where = f"Field {index + 1}"
        if not isinstance(field, dict):
            errors.append(f"{where} must be an object.")
            continue
        unknown = set(field) - _FIELD_KEYS
        if unknown:
            errors.append(f"{where} has unknown keys: {', '.join(sorted(unknown))}.")
        name = field.get("name")
        if not isinstance(name, str) or not _FIELD_NAME.match(name):
            errors.append(f"{where} needs a name of lower-case letters, digits and underscores.")
        else:
            where = f"Field “{name}”"
            if name in seen:
                errors.append(f"{where} appears twice.")
            seen.add(name)
        if "label" in field and not isinstance(field["label"], str):
            errors.append(f"{where}: the label must be text.")
        if field.get("type") not in FieldType.values:
            errors.append(f"{where}: the type must be one of {', '.join(FieldType.values)}.")
        if not isinstance(field.get("required", False), bool):
            errors.append(f"{where}: “required” must be true or false.")
        choices = field.get("choices")
        if field.get("type") == FieldType.CHOICE:
            if not (isinstance(choices, list) and choices and all(isinstance(c, str) and c.strip() for c in choices)):
                errors.append(f"{where}: a choice field needs a non-empty list of choices.")
            elif len(set(choices)) != len(choices):
                errors.append(f"{where}: the choices repeat.")
        elif choices not in (None, []):
            errors.append(f"{where}: only choice fields have choices.")
    return errors


def validate_field_schema(fields: Any) -> None:
    errors = field_schema_errors(fields)
    if errors:
        raise ValidationError({"fields": errors})


_JSON_TYPES = {
    FieldType.TEXT: {"type": "string"},
    FieldType.EMAIL: {"type": "string", "format": "email"},
    FieldType.PHONE: {"type": "string"},
    FieldType.NUMBER: {"type": "number"},
    FieldType.DATE: {"type": "string", "format": "date"},
    FieldType.BOOLEAN: {"type": "boolean"},
}


def category_json_schema(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON Schema ``Lead.custom`` must satisfy for a category (unknown extra keys are allowed)."""
    properties = {}
    for field in fields:
        if field["type"] == FieldType.CHOICE:
            properties[field["name"]] = {"enum": list(field["choices"])}
        else:
            properties[field["name"]] = dict(_JSON_TYPES[field["type"]])
    return {
        "type": "object",
        "properties": properties,
        "required": [field["name"] for field in fields if field.get("required")],
    }


def field_filter_errors(filters: Any) -> list[str]:
    """Every problem with a subscription's field filters: ``[{"field", "operator", "value"}, …]``."""
    if not isinstance(filters, list):
        return ["Field filters must be a list."]
    if len(filters) > MAX_SUBSCRIPTION_FILTERS:
        return [f"A subscription can have at most {MAX_SUBSCRIPTION_FILTERS} filters."]
    errors = []
    for index, rule in enumerate(filters):
        where = f"Filter {index + 1}"
        if not isinstance(rule, dict):
            errors.append(f"{where} must be an object.")
            continue
        unknown = set(rule) - _FILTER_KEYS
        if unknown:
            errors.append(f"{where} has unknown keys: {', '.join(sorted(unknown))}.")
        if not isinstance(rule.get("field"), str) or not rule["field"].strip():
            errors.append(f"{where} needs a field: a lead field (state, city, …) or custom.<name>.")
        if rule.get("operator") not in FilterOperator.values:
            errors.append(f"{where}: the operator must be one of {', '.join(FilterOperator.values)}.")
        value = rule.get("value", "")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            errors.append(f"{where}: the value must be text or a number (for “in”, comma separated).")
        elif rule.get("operator") not in _VALUELESS_OPERATORS and str(value).strip() == "":
            errors.append(f"{where}: this operator needs a value.")
    return errors


def validate_field_filters(filters: Any) -> None:
    errors = field_filter_errors(filters)
    if errors:
        raise ValidationError({"field_filters": errors})
