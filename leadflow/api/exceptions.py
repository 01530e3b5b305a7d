"""One error format for the whole API:

    {"type": "validation_error", "detail": "Invalid input.", "errors": {"email": ["Enter a valid email address."]}}

``errors`` maps each field to its messages (``non_field_errors`` for the rest); it is empty for errors that are
not about input.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from leadflow.exceptions import PermissionDeniedError, ServiceError

_TYPES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        errors: dict[str, list[str]] = {}
        for field, value in detail.items():
            if isinstance(value, dict):
                for sub, messages in _flatten(value).items():
                    errors[f"{field}.{sub}"] = messages
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub, messages in _flatten(item).items():
                        errors[f"{field}[{index}].{sub}"] = messages
            else:
                errors[field] = [str(m) for m in (value if isinstance(value, list) else [value])]
        return errors
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in detail]}
    return {"non_field_errors": [str(detail)]}


def api_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        field = exc.field or "non_field_errors"
        api_exc = (
            exceptions.PermissionDenied if isinstance(exc, PermissionDeniedError) else exceptions.ValidationError
        )({field: [exc.message]})
        api_exc.detail = {field: [exc.message]}
        exc = api_exc
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        # DRF converts it too, but only inside its own handler: below, `exc` must be the API exception.
        exc = exceptions.PermissionDenied(*exc.args)

    response = exception_handler(exc, context)
    if response is None:
        return None
    error_type = next((name for cls, name in _TYPES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError) or (
        isinstance(exc.detail, dict) and error_type == "permission_denied"
    ):
        errors = _flatten(exc.detail)
        first = next(iter(errors.values()), ["Invalid input."])[0]
        detail = "Invalid input." if error_type == "validation_error" else first
    else:
        errors = {}
        detail = str(exc.detail)
    response.data = {"type": error_type, "detail": detail, "errors": errors}
    if getattr(exc, "submission_id", None):
        # The payload was stored before it failed: the sender can quote this id, operators can replay it.
        response.data["submission_id"] = exc.submission_id
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and getattr(exc, "wait", None):
        response.data["retry_after"] = int(exc.wait)
    return response
