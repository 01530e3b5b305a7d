"""Short-lived, per-process memory of values read on every request or task.

For facts that change rarely and are read constantly (an API key, an organization's scoring rules, its plan's
quota): each process re-reads them at most every few seconds. The process that makes a change forgets at once (the
callers wire ``forget`` to their models' signals); other processes see it within ``seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class ProcessCache(Generic[Value]):
    """``remember_missing``: keep a ``None`` answer too (for "no such row" asked on every request, where a row
    created meanwhile may wait ``seconds`` to be seen); otherwise ``None`` is read again each time.

    ``while_read``: ``seconds`` count from the last read, not from the load, so a value read all the time is never
    loaded again on its own: for values whose caller checks them against the database itself (a version read under
    a lock) and only needs idle ones dropped."""

    def __init__(self, seconds: float, *, remember_missing: bool = False, while_read: bool = False):
        self.seconds = seconds
        self.remember_missing = remember_missing
        self.while_read = while_read
        self._entries: dict[Hashable, tuple[float, Value | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Value | None]) -> Value | None:
        """The cached value for ``key``, or ``load()``'s when there is none or it is too old."""
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] <= self.seconds:
            if self.while_read:
                # Unlocked: a forget() racing with this read can leave the entry in place, which is why this is only
                # for values the caller checks against the database itself.
                self._entries[key] = (now, cached[1])
            return cached[1]
        value = load()
        if value is not None or self.remember_missing:
            with self._lock:
                self._entries[key] = (now, value)
        return value

    def peek(self, key: Hashable) -> Value | None:
        """The cached value for ``key`` however old, without loading (to update it in place)."""
        cached = self._entries.get(key)
        return cached[1] if cached is not None else None

    def forget(self, key: Hashable | None = None) -> None:
        """Forget ``key``, or everything."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)
