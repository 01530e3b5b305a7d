"""The organization the current request, task or command acts for.

A context variable works for threads and asyncio alike, and is reset by every entry point in a ``finally``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import Organization


class OrganizationScopeMissing(RuntimeError):
    """A tenant-owned table was read with no organization in scope."""


class _AllOrganizations:
    """Marker for the operator scope: the admin and operator commands see every tenant."""

    def __repr__(self) -> str:
        return "<all organizations>"


ALL_ORGANIZATIONS = _AllOrganizations()

_current: ContextVar[Organization | _AllOrganizations | None] = ContextVar("leadflow_organization", default=None)


def get_scope() -> Organization | _AllOrganizations | None:
    return _current.get()


def get_current_organization() -> Organization | None:
    scope = _current.get()
    return None if scope is ALL_ORGANIZATIONS else scope


def set_scope(scope: Organization | _AllOrganizations | None):
    """Low-level setter for entry points that cannot use a ``with`` block; returns the token to reset."""
    return _current.set(scope)


def reset_scope(token) -> None:
    _current.reset(token)


@contextlib.contextmanager
def organization_scope(organization: Organization) -> Iterator[Organization]:
    if organization is None:
        raise ValueError("organization_scope needs an organization")
    token = _current.set(organization)
    try:
        yield organization
    finally:
        _current.reset(token)


@contextlib.contextmanager
def operator_scope() -> Iterator[None]:
    """Every organization at once: for the Django admin, migrations and operator commands only."""
    token = _current.set(ALL_ORGANIZATIONS)
    try:
        yield
    finally:
        _current.reset(token)
