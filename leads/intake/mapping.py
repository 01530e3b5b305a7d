"""From a source's payload to clean lead fields: map, normalize, validate.

Every source ends in the standard shape (the supplier API's JSON): sources with their own payloads (Facebook,
Google, LinkedIn, CSV columns …) register a mapper that translates into it, and everything after that is shared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from ipaddress import ip_address
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..constants import MAX_TAGS, TAG_MAX_LENGTH
from .custom_fields import validate_custom_fields
from .normalize import (
    NormalizationError,
    clean_text,
    normalize_country,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_state,
    split_full_name,
)

Errors = dict[str, list[str]]

CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "job_title",
    "city",
    "state",
    "postal_code",
    "country",
)
UTM_FIELDS = ("source", "medium", "campaign", "term", "content")
ATTRIBUTION_FIELDS = (
    "gclid",
    "fbclid",
    "ad_id",
    "form_id",
    "campaign_id",
    "landing_page",
    "referrer",
    "ip_address",
    "user_agent",
)
CONSENT_FIELDS = ("given", "text", "at", "ip", "method", "certificate_url")
OTHER_FIELDS = ("external_id", "custom", "utm", "consent", "tags", "deal_value")
STANDARD_FIELDS = frozenset(CONTACT_FIELDS + ATTRIBUTION_FIELDS + OTHER_FIELDS + tuple(f"utm_{f}" for f in UTM_FIELDS))

# Names sources commonly use for the standard fields (compared lower-cased, spaces and dashes as underscores).
ALIASES = {
    "name": "full_name",
    "fullname": "full_name",
    "firstname": "first_name",
    "first": "first_name",
    "lastname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "email_address": "email",
    "e_mail": "email",
    "mail": "email",
    "phone_number": "phone",
    "mobile": "phone",
    "mobile_number": "phone",
    "telephone": "phone",
    "tel": "phone",
    "contact_number": "phone",
    "whatsapp": "phone",
    "company_name": "company",
    "organisation": "company",
    "organization": "company",
    "title": "job_title",
    "zip": "postal_code",
    "zip_code": "postal_code",
    "zipcode": "postal_code",
    "postcode": "postal_code",
    "pincode": "postal_code",
    "pin_code": "postal_code",
    "region": "state",
    "province": "state",
    "country_code": "country",
    "ip": "ip_address",
    "landing_page_url": "landing_page",
    "page_url": "landing_page",
    "referrer_url": "referrer",
    "referer": "referrer",
    "id": "external_id",
    "lead_id": "external_id",
}


def canonical_key(key: Any) -> str:
    text = clean_text(key, max_length=100).lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(text, text)


Mapper = Callable[[Mapping[str, Any], dict[str, Any]], dict[str, Any]]
_MAPPERS: dict[str, Mapper] = {}


def register_mapper(source: str):
    """Register the function turning ``source``'s payload (and submission context) into the standard shape."""

    def register(function: Mapper) -> Mapper:
        _MAPPERS[source] = function
        return function

    return register


def map_payload(source: str, payload: Any, context: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise NormalizationError("Send the lead as a JSON object.")
    mapper = _MAPPERS.get(source)
    return dict(mapper(payload, context)) if mapper else standard_shape(payload)


def standard_shape(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Known fields (and their aliases) by their standard names; everything else joins ``custom``."""
    shaped: dict[str, Any] = {}
    custom = dict(payload.get("custom") or {}) if isinstance(payload.get("custom"), Mapping) else {}
    for key, value in payload.items():
        name = canonical_key(key)
        if name == "custom":
            if not isinstance(value, Mapping):
                shaped["custom"] = value  # reported by clean_lead_fields
            continue
        if name in STANDARD_FIELDS:
            shaped.setdefault(name, value)
        else:
            custom.setdefault(clean_text(key, max_length=100), value)
    if "custom" not in shaped:
        shaped["custom"] = custom
    return shaped


def clean_lead_fields(
    shaped: Mapping[str, Any], *, organization, source: str, schema: dict | None = None
) -> tuple[dict[str, Any], Errors]:
    """Normalize and validate a standard-shape payload into Lead field values, or field errors."""
    errors: Errors = {}
    fields: dict[str, Any] = {}

    def attempt(name: str, function: Callable[[], Any]) -> None:
        try:
            value = function()
        except (NormalizationError, ValidationError, ValueError, TypeError) as error:
            message = error.messages[0] if isinstance(error, ValidationError) else str(error)
            errors.setdefault(name, []).append(message)
        else:
            if name.startswith("_"):
                return
            fields[name] = value

    get = shaped.get
    country = ""
    attempt("country", lambda: normalize_country(get("country"), default=str(organization.country or "")))
    country = fields.get("country", "")
    region = country or organization.default_phone_region
    attempt("email", lambda: normalize_email(get("email")))
    attempt("phone", lambda: normalize_phone(get("phone"), region=region))
    attempt("first_name", lambda: normalize_name(get("first_name")))
    attempt("last_name", lambda: normalize_name(get("last_name")))
    attempt("full_name", lambda: normalize_name(get("full_name")))
    if fields.get("full_name") and not (fields.get("first_name") or fields.get("last_name")):
        fields["first_name"], fields["last_name"] = split_full_name(fields["full_name"])
    if not fields.get("full_name"):
        fields["full_name"] = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p)
    attempt("company", lambda: normalize_name(get("company")))
    attempt("job_title", lambda: clean_text(get("job_title")))
    attempt("city", lambda: normalize_name(get("city")))
    attempt("state", lambda: normalize_state(get("state"), country=country))
    attempt("postal_code", lambda: clean_text(get("postal_code"), max_length=20).upper())
    attempt("external_id", lambda: clean_text(get("external_id")))

    if not errors.get("email") and not errors.get("phone") and not (fields.get("email") or fields.get("phone")):
        errors.setdefault("non_field_errors", []).append(
            "Send an email address or a phone number: a lead needs a way to reach them."
        )

    # Attribution: top-level utm_* or a nested utm object.
    utm = get("utm") or {}
    if not isinstance(utm, Mapping):
        errors["utm"] = ['Send utm as an object, e.g. {"source": "google"}.']
        utm = {}
    for name in UTM_FIELDS:
        attempt(f"utm_{name}", lambda name=name: clean_text(get(f"utm_{name}") or utm.get(name)))
    for name in ("gclid", "fbclid", "ad_id", "form_id", "user_agent"):
        attempt(name, lambda name=name: clean_text(get(name), max_length=512 if name == "user_agent" else 255))
    attempt("ad_campaign_id", lambda: clean_text(get("campaign_id"), max_length=120))
    attempt("landing_page", lambda: _url(get("landing_page")))
    attempt("referrer", lambda: _url(get("referrer")))
    attempt("ip_address", lambda: _ip(get("ip_address")))

    consent = get("consent") or {}
    if isinstance(consent, bool):
        consent = {"given": consent}
    if not isinstance(consent, Mapping):
        errors["consent"] = ['Send consent as an object: {"given": true, "text": …}.']
        consent = {}
    attempt("consent_given", lambda: _boolean(consent.get("given")))
    attempt("consent_text", lambda: clean_text(consent.get("text"), max_length=5000))
    attempt("consent_at", lambda: _datetime(consent.get("at")))
    attempt("consent_ip", lambda: _ip(consent.get("ip")))
    attempt("consent_method", lambda: clean_text(consent.get("method"), max_length=120))
    attempt("consent_certificate_url", lambda: _url(consent.get("certificate_url")))
    if fields.get("consent_given") and not fields.get("consent_at"):
        fields["consent_at"] = timezone.now()
    for short, long in (
        ("given", "consent_given"),
        ("text", "consent_text"),
        ("at", "consent_at"),
        ("ip", "consent_ip"),
        ("method", "consent_method"),
        ("certificate_url", "consent_certificate_url"),
    ):
        if long in errors:
            errors[f"consent.{short}"] = errors.pop(long)

    attempt("tags", lambda: clean_tags(get("tags")))
    attempt("deal_value", lambda: _decimal(get("deal_value")))

    custom = get("custom") if get("custom") is not None else {}
    if not isinstance(custom, Mapping):
        errors["custom"] = ["Send custom fields as an object of name → value."]
    else:
        fields["custom"] = {
            clean_text(k, max_length=100): json_safe(v) for k, v in custom.items() if clean_text(k, max_length=100)
        }
        for path, message in validate_custom_fields(fields["custom"], schema):
            errors.setdefault(f"custom.{path}" if path else "custom", []).append(message)
    for prefix_name in [name for name in errors if name.startswith("utm_") and name[4:] in UTM_FIELDS]:
        errors[f"utm.{prefix_name[4:]}"] = errors.pop(prefix_name)
    return fields, errors


def json_safe(value: Any) -> Any:
    """The value with NUL characters and lone surrogates removed from every string: PostgreSQL cannot store them."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    return value


def clean_tags(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise NormalizationError("Send tags as a list of words.")
    tags: list[str] = []
    for item in value:
        tag = clean_text(item, max_length=TAG_MAX_LENGTH).lower()
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise NormalizationError(f"At most {MAX_TAGS} tags.")
    return tags


def _url(value: Any) -> str:
    text = clean_text(value, max_length=1000)
    if text:
        try:
            URLValidator(schemes=["http", "https"])(text)
        except ValidationError:
            raise NormalizationError(f"“{text[:80]}” is not a web address (http:// or https://).") from None
    return text


def _ip(value: Any) -> str | None:
    text = clean_text(value, max_length=64)
    if not text:
        return None
    try:
        return str(ip_address(text))
    except ValueError:
        raise NormalizationError(f"“{text}” is not an IP address.") from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, ""):
        return False
    text = clean_text(value).lower()
    if text in {"1", "true", "yes", "y", "on", "checked", "agreed"}:
        return True
    if text in {"0", "false", "no", "n", "off"}:
        return False
    raise NormalizationError(f"“{text}” is not yes or no (send true or false).")


def _datetime(value: Any):
    text = clean_text(value, max_length=64)
    if not text:
        return None
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise NormalizationError(f"“{text}” is not a date and time; send ISO 8601, e.g. 2026-11-23T10:15:00Z.")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, timezone.get_current_timezone())


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise NormalizationError(f"“{value}” is not an amount.") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise NormalizationError("Send an amount between 0 and 999,999,999,999.")
    return amount.quantize(Decimal("0.01"))
