"""Errors that services raise. One API exception handler and one form helper turn them into responses."""

from __future__ import annotations


class ServiceError(Exception):
    """A business rule said no. ``field`` names the input at fault, when there is one."""

    default_code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.default_code


class PermissionDeniedError(ServiceError):
    default_code = "permission_denied"
