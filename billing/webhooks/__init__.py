"""Per-provider handlers of recorded ``BillingEvent`` rows: ``handle(event) -> Outcome``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    applied: bool
    message: str
    organization_id: int | None = None


def ignored(message: str, organization_id: int | None = None) -> Outcome:
    return Outcome(False, message, organization_id)


def applied(message: str, organization_id: int | None = None) -> Outcome:
    return Outcome(True, message, organization_id)
