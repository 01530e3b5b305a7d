"""The per-process memory behind API keys, scoring rules and quotas."""

from __future__ import annotations

from leadflow import caching
from leadflow.caching import ProcessCache


def test_a_value_is_read_again_once_it_is_older_than_the_cache_keeps_it(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: clock[0])
    cache: ProcessCache[int] = ProcessCache(seconds=10)
    loads = []

    def load():
        loads.append(clock[0])
        return len(loads)

    assert cache.get("org-1", load) == 1
    clock[0] += 9
    assert cache.get("org-1", load) == 1  # still fresh
    clock[0] += 2
    assert cache.get("org-1", load) == 2  # 11 s old: read again
    cache.forget("org-1")
    assert cache.get("org-1", load) == 3
    assert loads == [100.0, 111.0, 111.0]


def test_nothing_is_kept_for_a_missing_value():
    cache: ProcessCache[str] = ProcessCache(seconds=10)
    assert cache.get("key", lambda: None) is None
    assert cache.get("key", lambda: "found") == "found"
    assert cache.peek("key") == "found" and cache.peek("other") is None


def test_a_value_kept_while_read_is_loaded_again_only_once_it_has_been_idle(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: clock[0])
    cache: ProcessCache[int] = ProcessCache(seconds=10, while_read=True)
    loads = []

    def load():
        loads.append(clock[0])
        return len(loads)

    for _ in range(5):  # read every 9 s for 45 s: never older than 10 s since its last read
        assert cache.get("campaign-1", load) == 1
        clock[0] += 9
    clock[0] += 2  # 11 s since the last read
    assert cache.get("campaign-1", load) == 2
    assert loads == [100.0, 147.0]
