"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        result = {"status": "ok"}
        if detail:
            result["detail"] = detail
    except Exception as error:  # the probe reports any failure instead of raising
        result = {"status": "error", "error": f"{type(error).__name__}: {error}"[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _check_redis():
    if not settings.REDIS_URL:
        return "not configured: in-process cache and channel layer"
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return None


def _check_broker():
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager: tasks run in the web process"
    from leadflow.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return None


@require_GET
@never_cache
def readyz(request):
    """Database, Redis and the Celery broker are reachable; 503 when any is not."""
    checks = {"database": _timed(_check_database), "redis": _timed(_check_redis), "broker": _timed(_check_broker)}
    ready = all(check["status"] == "ok" for check in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
