"""Worker wake-ups a request holds until its own work is done (leadflow.wakeups)."""

from __future__ import annotations

import pytest

from leadflow.wakeups import wake, wakeups_held


def test_outside_a_held_block_a_wake_up_is_sent_at_once():
    sent = []
    wake("outbox", lambda: sent.append("outbox"))
    assert sent == ["outbox"]


def test_held_wake_ups_are_sent_once_each_when_the_block_ends():
    sent = []
    with wakeups_held():
        wake(("outbox", 1, "lead.created"), lambda: sent.append("lead.created"))
        wake(("outbox", 1, "lead.created"), lambda: sent.append("lead.created again"))
        wake(("sale-deliveries", 1), lambda: sent.append("deliveries"))
        assert sent == []
    assert sent == ["lead.created", "deliveries"]


def test_they_are_sent_when_the_block_fails_and_one_failing_does_not_cost_the_others():
    sent = []

    def broken():
        raise ConnectionError("the broker is down")

    with pytest.raises(ValueError), wakeups_held():
        wake("first", broken)
        wake("second", lambda: sent.append("second"))
        raise ValueError("the request failed after its lead committed")
    assert sent == ["second"]


def test_a_nested_block_leaves_them_to_the_outermost():
    sent = []
    with wakeups_held():
        with wakeups_held():
            wake("outbox", lambda: sent.append("outbox"))
        assert sent == []
    assert sent == ["outbox"]
