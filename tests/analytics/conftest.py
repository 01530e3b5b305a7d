from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics.selectors import ReportFilters
from analytics.services import rollups_rebuild
from leadflow.tenancy.context import organization_scope
from leads.services.stages import stages_ensure_default
from tests.factories import LeadFactory, OrganizationFactory, UserFactory


def at(text: str) -> datetime:
    """A UTC instant: ``at("2026-10-10 18:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str):
    return datetime.fromisoformat(text).date()


@pytest.fixture
def org(db):
    # Asia/Kolkata (UTC+5:30): 18:29 UTC is still the same local day, 18:30 UTC is already the next one.
    return OrganizationFactory(timezone="Asia/Kolkata")


@pytest.fixture
def stages(org):
    return {stage.name: stage for stage in stages_ensure_default(organization=org)}


@pytest.fixture
def people(org):
    return [UserFactory(first_name="Asha", last_name="Rao"), UserFactory(first_name="Bilal", last_name="Khan")]


@pytest.fixture
def make_lead(org, stages):
    def build(received: str, *, stage="New", contacted_after_s=None, **fields):
        received_at = at(received)
        if contacted_after_s is not None:
            from datetime import timedelta

            fields["first_contacted_at"] = received_at + timedelta(seconds=contacted_after_s)
        if "won_amount" in fields:
            fields["won_amount"] = Decimal(fields["won_amount"])
        return LeadFactory(organization=org, received_at=received_at, stage=stages[stage], **fields)

    return build


@pytest.fixture
def report(org):
    """Rebuild the rollups, then run a report's selector in the organization's scope."""

    def run(selector, date_from: str, date_to: str, *, rebuild=True, **filters):
        if rebuild:
            rollups_rebuild(organization=org)
        with organization_scope(org):
            return selector(ReportFilters(date_from=d(date_from), date_to=d(date_to), **filters))

    return run


def by(rows, key):
    return {row[key]: row for row in rows}
