"""Worker wake-ups that a request holds until its own work is done.

A lead posted to a campaign commits twice: the lead, then its distribution. The lead's commit woke the worker for
its ``lead.created`` handlers at once, and they ran on the same two cores as the distribution the request was still
doing, so the supplier waited for both. Inside ``wakeups_held()`` a wake-up (a Redis flag and a task for the worker)
is remembered, once per key, and sent when the block ends, however it ends: the handlers start a few milliseconds
later, once the answer is ready. Nothing waits for the wake-up itself: the rows it announces are committed either
way, and the sweeps find them if it is never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

logger = logging.getLogger(__name__)

_held: ContextVar[dict[Hashable, Callable[[], None]] | None] = ContextVar("held_wakeups", default=None)


def wake(key: Hashable, send: Callable[[], None]) -> None:
    """``send()`` now, or when the enclosing ``wakeups_held()`` ends (once per ``key``: one wake-up says it all)."""
    held = _held.get()
    if held is None:
        send()
    else:
        held.setdefault(key, send)


@contextmanager
def wakeups_held() -> Iterator[None]:
    if _held.get() is not None:  # nested: the outermost block sends them
        yield
        return
    held: dict[Hashable, Callable[[], None]] = {}
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        for key, send in held.items():
            try:
                send()
            except Exception:  # one lost wake-up must not cost the others (the sweeps cover it)
                logger.exception("wake-up %s could not be sent", key)
