"""Custom fields are free-form JSON, checked against a JSON Schema when the lead's category defines one.

The campaigns issue adds categories with schemas; until then ``custom_field_schema`` finds none. A provider
registered with ``register_schema_provider`` returns the schema for a submission (or ``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft202012Validator

SchemaProvider = Callable[..., dict | None]
_PROVIDERS: list[SchemaProvider] = []


def register_schema_provider(provider: SchemaProvider) -> SchemaProvider:
    _PROVIDERS.append(provider)
    return provider


def custom_field_schema(*, organization, source: str, context: dict[str, Any]) -> dict | None:
    for provider in _PROVIDERS:
        schema = provider(organization=organization, source=source, context=context)
        if schema:
            return schema
    return None


def validate_custom_fields(custom: dict[str, Any], schema: dict | None) -> Iterator[tuple[str, str]]:
    """``(path, message)`` for every way ``custom`` breaks ``schema``; nothing without a schema."""
    if not schema:
        return
    validator = Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(custom), key=lambda e: list(e.path)):
        yield ".".join(str(part) for part in error.path), error.message
