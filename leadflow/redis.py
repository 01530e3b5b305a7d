"""One Redis client per process for the per-request hot paths (API throttles, outbox wake-ups).

Django's Redis cache backend builds a new client object on every call, which costs more CPU than the round trip
itself; these paths run on every API request. Keys go through the cache's key function, so they share its prefix
(and a test run's cleanup).
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings
from django.core.cache import cache as django_cache


@cache
def redis_client() -> redis.Redis | None:
    """The shared client, or None when LeadFlow runs without Redis (offline development)."""
    url = getattr(settings, "REDIS_URL", "")
    # The pool is thread-safe and re-creates its connections in a forked child.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None


def redis_key(name: str) -> str:
    return django_cache.make_key(name)
