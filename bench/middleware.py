"""Bench-only: how many SQL statements each request ran, and (on request) which ones, with their duration."""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection

CAPTURE_HEADER = "HTTP_X_BENCH_CAPTURE"
_LABEL = re.compile(r"[^a-z0-9_.-]+")


class SqlCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        label = request.META.get(CAPTURE_HEADER, "")
        statements: list[dict] = []
        counter = _Counter(statements if label and settings.BENCH_CAPTURE_DIR else None)
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        response["X-Bench-SQL-Count"] = str(counter.count)
        if counter.statements is not None:
            name = _LABEL.sub("-", label.lower())[:80] or "request"
            Path(settings.BENCH_CAPTURE_DIR, f"{name}.json").write_text(json.dumps(statements, indent=1))
        return response


class _Counter:
    def __init__(self, statements: list[dict] | None):
        self.count = 0
        self.statements = statements

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if self.statements is None:
            return execute(sql, params, many, context)
        text = sql
        if params is not None and not many:
            # With the values inlined, so it can be EXPLAINed as is. A cursor of its own: mogrify() on the
            # executing cursor would drop that cursor's result.
            with contextlib.suppress(Exception):
                text = psycopg.ClientCursor(context["connection"].connection).mogrify(sql, params)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append({"sql": text, "ms": round((time.perf_counter() - started) * 1000, 3)})
