"""Reads for reports from a streaming replica, writes always to the primary.

Code that can live with a replica's lag (reports, the operator console's monitoring, analytics) opts in with
``reading_from_replica()`` (a context manager and a decorator); everything else reads the primary, as do reads inside
a transaction on the primary (they must see what that transaction wrote) and every read when no
``DATABASE_REPLICA_URL`` is configured. Writes are never sent to the replica, and migrations run on the primary only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA_DB_ALIAS = "replica"

_reading_from_replica: ContextVar[bool] = ContextVar("leadflow_reading_from_replica", default=False)


def replica_configured() -> bool:
    return REPLICA_DB_ALIAS in settings.DATABASES


@contextlib.contextmanager
def reading_from_replica() -> Iterator[None]:
    token = _reading_from_replica.set(True)
    try:
        yield
    finally:
        _reading_from_replica.reset(token)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _reading_from_replica.get() and replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return REPLICA_DB_ALIAS
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the same rows: an object read from it may be related to one read from the primary.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS
