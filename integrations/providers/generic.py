"""Generic webhooks (Zapier, Pabbly Connect, n8n, Make, custom sites): whatever JSON or form body the user's tool
sends, mapped to lead fields by the connection's dotted paths (``data.contact.email``, ``items.0.phone``).

Signing (optional, when the connection has a secret): ``X-LeadFlow-Signature: sha256=<hex>``, the HMAC-SHA256 of
the raw body keyed with the secret — the same scheme as Meta's ``X-Hub-Signature-256`` (also accepted), which Make,
n8n and most languages compute in one line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from leads.intake.mapping import STANDARD_FIELDS, register_mapper, standard_shape
from leads.intake.normalize import NormalizationError

SIGNATURE_HEADERS = ("X-LeadFlow-Signature", "X-Hub-Signature-256")
SIGNATURE_PREFIX = "sha256="
_INDEX = re.compile(r"\[([0-9]+)\]")
_MISSING = object()

# What a mapping may write to: the standard fields (utm_* flat), or a custom field as ``custom.<name>``.
MAPPABLE_FIELDS = (*sorted(STANDARD_FIELDS - {"custom", "utm", "consent"}), "consent.given", "consent.text")


def webhook_signature(*, secret: str, body: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_signature_valid(*, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    expected = webhook_signature(secret=secret, body=body)
    for name in SIGNATURE_HEADERS:
        given = (headers.get(name) or "").strip()
        if given and hmac.compare_digest(given.lower().encode(), expected.encode()):
            return True
    return False


# A list step is ASCII digits: str.isdigit() also accepts "²" and other digits int() refuses.
_LIST_INDEX = re.compile(r"-?[0-9]+")


def path_parts(path: str) -> list[str]:
    """``data.items[0].email`` and ``data.items.0.email`` both give ``["data", "items", "0", "email"]``."""
    return [part for part in _INDEX.sub(r".\1", path.strip()).split(".") if part]


def resolve_path(payload: Any, path: str) -> Any:
    """The value at a dotted path, or ``None`` when any step is missing."""
    value: Any = payload
    for part in path_parts(path):
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list | tuple) and _LIST_INDEX.fullmatch(part):
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return None
    return value


def validate_mapping_target(target: str) -> str:
    target = target.strip()
    if target in MAPPABLE_FIELDS or (target.startswith("custom.") and len(target) > len("custom.")):
        return target
    raise ValueError(f"“{target}” is not a lead field; use one of the standard fields or custom.<name>.")


def unwrap(payload: Any) -> Any:
    """n8n's webhook items are ``{headers, params, query, body}``: the lead is the body."""
    if isinstance(payload, Mapping) and isinstance(payload.get("body"), Mapping) and "headers" in payload:
        return payload["body"]
    return payload


def apply_mapping(payload: Mapping[str, Any], *, mapping: Mapping[str, str], defaults: Mapping[str, Any]) -> dict:
    """The standard shape: known top-level keys as usual, then each mapped path, then defaults for what is empty.

    ``mapping`` is lead field → path in the payload; ``defaults`` is lead field → value used when the mapped (or
    top-level) value is missing or blank.
    """
    payload = unwrap(payload)
    shaped = standard_shape(payload) if isinstance(payload, Mapping) else {"custom": {}}
    custom = dict(shaped.get("custom") or {})
    consent: dict[str, Any] = {}

    def put(target: str, value: Any) -> None:
        if target.startswith("custom."):
            custom[target.removeprefix("custom.")] = value
        elif target.startswith("consent."):
            consent[target.removeprefix("consent.")] = value
        else:
            shaped[target] = value

    def present(target: str) -> bool:
        if target.startswith("custom."):
            value = custom.get(target.removeprefix("custom."))
        elif target.startswith("consent."):
            value = consent.get(target.removeprefix("consent."))
        else:
            value = shaped.get(target)
        return value not in (None, "", [])

    for target, path in mapping.items():
        if not path:
            continue
        value = resolve_path(payload, path)
        if value is not None:
            put(target, value)
    for target, value in defaults.items():
        if not present(target):
            put(target, value)
    shaped["custom"] = custom
    if consent:
        shaped["consent"] = consent
    return shaped


@register_mapper("webhook")
def map_generic_webhook(payload: Mapping[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    if context.get("signature_valid") is False:
        raise NormalizationError("The request's signature did not verify: it was stored but not processed.")
    connection_id = context.get("connection_id")
    if connection_id is None:
        return standard_shape(payload)  # a webhook lead that did not come through a connection (tests, imports)
    from ..models import IntegrationConnection

    # Scoped: the pipeline runs in the submission's organization, so another organization's connection is never read.
    connection = IntegrationConnection.objects.filter(pk=connection_id).only("settings").first()
    options = connection.settings if connection is not None else {}
    return apply_mapping(payload, mapping=options.get("mapping") or {}, defaults=options.get("defaults") or {})


def payload_paths(payload: Any, prefix: str = "", limit: int = 200) -> list[tuple[str, Any]]:
    """Every leaf of a payload as (dotted path, value): the hints the mapping editor shows."""
    found: list[tuple[str, Any]] = []

    def walk(value: Any, path: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list | tuple) and value:
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}" if path else str(index))
        else:
            found.append((path, value))

    walk(unwrap(payload), prefix)
    return found
