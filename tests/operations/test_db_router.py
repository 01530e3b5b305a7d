"""The read-replica router, with the test database as its replica (a mirror with its own connection)."""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Organization
from leadflow.db_router import REPLICA_DB_ALIAS, ReplicaRouter, reading_from_replica
from leadflow.operations.campaigns import campaigns_activity, day_start
from tests.factories import CampaignFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_reads_go_to_the_replica_only_when_asked():
    organization = OrganizationFactory(name="Replicated Co")
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections[REPLICA_DB_ALIAS]) as replica,
    ):
        assert Organization.objects.get(pk=organization.pk).name == "Replicated Co"
        assert len(primary) == 1 and len(replica) == 0
        with reading_from_replica():
            found = Organization.objects.get(pk=organization.pk)
        assert found._state.db == REPLICA_DB_ALIAS
        assert len(replica) == 1 and len(primary) == 1


def test_writes_always_go_to_the_primary():
    organization = OrganizationFactory()
    with reading_from_replica(), CaptureQueriesContext(connections[REPLICA_DB_ALIAS]) as replica:
        found = Organization.objects.get(pk=organization.pk)  # read from the replica
        found.name = "Renamed"
        found.save()
        Organization.objects.filter(pk=organization.pk).update(phone="+911234567890")
    assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in replica.captured_queries)
    organization.refresh_from_db()
    assert (organization.name, organization.phone) == ("Renamed", "+911234567890")


def test_reads_inside_a_transaction_see_its_own_writes():
    with transaction.atomic(), reading_from_replica():
        organization = OrganizationFactory(name="Not yet committed")
        # A replica would not have the row yet: reads in a transaction stay on the primary.
        assert Organization.objects.get(pk=organization.pk)._state.db == "default"
        assert ReplicaRouter().db_for_read(Organization) == "default"


def test_migrations_run_on_the_primary_only():
    router = ReplicaRouter()
    assert router.allow_migrate("default", "leads") is True
    assert router.allow_migrate(REPLICA_DB_ALIAS, "leads") is False


def test_the_campaign_monitoring_report_reads_the_replica():
    campaign = CampaignFactory(name="Replica campaign")
    with CaptureQueriesContext(connections[REPLICA_DB_ALIAS]) as replica:
        rows = campaigns_activity(since=day_start())
    assert campaign.pk in {row["campaign"].pk for row in rows}
    assert any("campaigns_campaign" in query["sql"] for query in replica.captured_queries)


def test_without_a_replica_everything_reads_the_primary(monkeypatch):
    from django.conf import settings

    monkeypatch.delitem(settings.DATABASES, REPLICA_DB_ALIAS)
    with reading_from_replica():
        assert ReplicaRouter().db_for_read(Organization) == "default"
