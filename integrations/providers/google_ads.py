"""Google Ads lead form webhooks: Google posts each lead as JSON with the key configured on the form.

Columns are mapped by ``column_id`` (``FULL_NAME``, ``EMAIL``, ``PHONE_NUMBER`` …); custom questions and columns we
do not know become custom fields under their ``column_name``. The lead id is the lead's ``external_id``, so a
re-delivery makes no second lead. Test leads (``is_test``, the form's "send test data" button) are tagged
``test-lead`` and marked in ``custom.google_is_test``: the Lead model has no test flag, and a tag is what lists,
filters and rules already understand.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from leads.intake.mapping import register_mapper, standard_shape
from leads.intake.normalize import NormalizationError

TEST_LEAD_TAG = "test-lead"

# Google's column id → our standard field.
COLUMN_FIELDS = {
    "FULL_NAME": "full_name",
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "POSTAL_CODE": "postal_code",
    "CITY": "city",
    "REGION": "state",
    "COUNTRY": "country",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
}
# Used for the standard field only when the form did not ask for the personal one.
FALLBACK_COLUMN_FIELDS = {"WORK_EMAIL": "email", "WORK_PHONE": "phone"}
# Ids kept with the lead's custom fields (64-bit integers in the payload: kept as strings).
EXTRA_IDS = ("adgroup_id", "asset_group_id", "api_version", "lead_stage", "lead_submit_time")


def google_key_valid(*, expected: str, given: Any) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _column_value(column: Mapping[str, Any]) -> Any:
    for key in ("string_value", "int_value", "bool_value", "double_value"):
        if key in column and column[key] is not None:
            return column[key]
    return None


@register_mapper("google_ads")
def map_google_ads_lead(payload: Mapping[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    if context.get("signature_valid") is False:
        raise NormalizationError("The google_key did not match this connection: stored but not processed.")
    if "user_column_data" not in payload:
        return standard_shape(payload)  # already in the standard shape (manual entry, imports, the demo)
    shaped: dict[str, Any] = {"custom": {}}
    custom = shaped["custom"]
    columns = payload.get("user_column_data") or []
    if not isinstance(columns, list):
        raise NormalizationError("user_column_data must be a list of columns.")
    fallbacks: dict[str, Any] = {}
    for column in columns:
        if not isinstance(column, Mapping):
            continue
        column_id = _text(column.get("column_id")).upper()
        value = _column_value(column)
        if column_id in COLUMN_FIELDS:
            shaped[COLUMN_FIELDS[column_id]] = value
        elif column_id in FALLBACK_COLUMN_FIELDS:
            fallbacks[FALLBACK_COLUMN_FIELDS[column_id]] = value
            custom[column_id.lower()] = value
        else:
            custom[_text(column.get("column_name")) or column_id.lower() or "column"] = value
    for field, value in fallbacks.items():
        if not shaped.get(field):
            shaped[field] = value

    shaped["external_id"] = _text(payload.get("lead_id"))
    shaped["gclid"] = _text(payload.get("gcl_id"))
    shaped["campaign_id"] = _text(payload.get("campaign_id"))
    shaped["form_id"] = _text(payload.get("form_id"))
    shaped["ad_id"] = _text(payload.get("creative_id"))
    shaped["utm_source"] = "google"
    shaped["utm_medium"] = "cpc"
    for name in EXTRA_IDS:
        if payload.get(name) not in (None, ""):
            custom[f"google_{name}"] = _text(payload[name])
    if payload.get("is_test") is True:
        custom["google_is_test"] = True
        shaped["tags"] = [TEST_LEAD_TAG]
    return shaped
