"""The transactional outbox: one bad event cannot hold back the others, and handled events are pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import OutboxEvent
from leads.services import outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(monkeypatch):
    """A batch handler for a test topic that records what it saw and refuses events marked ``poison``."""
    seen: list[list[int]] = []

    def handler(events):
        seen.append([event.payload["n"] for event in events])
        if any(event.payload.get("poison") for event in events):
            raise RuntimeError("cannot take this one")

    monkeypatch.setitem(outbox._BATCH_HANDLERS, "test.topic", [handler])
    return seen


def _publish(organization, n, **extra):
    return outbox.outbox_publish(organization=organization, topic="test.topic", payload={"n": n, **extra})


def test_a_failing_event_fails_alone_and_the_rest_are_handled(organization, recorded):
    for n in range(5):
        _publish(organization, n, poison=(n == 2))

    assert outbox.outbox_handle_pending(organization.pk, "test.topic") == 4
    assert recorded[0] == [0, 1, 2, 3, 4]  # the batch first, then each alone
    assert sorted(recorded[1:]) == [[0], [1], [2], [3], [4]]
    poison = OutboxEvent.objects.unscoped().get(payload__n=2)
    assert poison.handled_at is None and poison.attempts == 1 and "cannot take this one" in poison.last_error
    assert OutboxEvent.objects.unscoped().filter(handled_at__isnull=False).count() == 4

    # The next run meets only the poison event: it keeps failing, on its own, until it runs out of attempts.
    recorded.clear()
    assert outbox.outbox_handle_pending(organization.pk, "test.topic") == 0
    assert recorded == [[2]]


def test_other_organizations_events_are_left_alone(organization, other_organization, recorded):
    _publish(organization, 1)
    _publish(other_organization, 2)
    assert outbox.outbox_handle_pending(organization.pk, "test.topic") == 1
    assert recorded == [[1]]
    assert OutboxEvent.objects.unscoped().get(organization=other_organization).handled_at is None


def test_handled_events_are_pruned_after_a_week(organization, recorded):
    old, recent, pending = _publish(organization, 1), _publish(organization, 2), _publish(organization, 3)
    now = timezone.now()
    OutboxEvent.objects.unscoped().filter(pk=old.pk).update(handled_at=now - timedelta(days=8))
    OutboxEvent.objects.unscoped().filter(pk=recent.pk).update(handled_at=now - timedelta(days=6))

    assert outbox.outbox_prune() == 1
    assert set(OutboxEvent.objects.unscoped().values_list("pk", flat=True)) == {recent.pk, pending.pk}
