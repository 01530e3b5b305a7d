"""Structured logs: every record says which request or which Celery task it belongs to.

``RequestIdMiddleware`` gives each request an id (the proxy's ``X-Request-ID`` when it sends a sane one, a new one
otherwise), answers with it, and keeps it in a context variable for the request's lifetime; Celery tasks carry the
id of the request that queued them in a message header and run with their own task id and name in scope.
``ContextFilter`` copies those onto every log record, so ``LOG_FORMAT=json`` lines (``JsonFormatter``) and plain
lines can be grepped by request or task across web processes and workers.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# The Celery message header that carries the queuing request's id to the worker.
TASK_REQUEST_ID_HEADER = "leadflow_request_id"
# What a proxy may send us as a request id: nginx's $request_id, a UUID, a trace id. Anything else is replaced, so a
# client cannot put newlines or megabytes into every log line.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")

request_id_var: ContextVar[str | None] = ContextVar("leadflow_request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("leadflow_task_id", default=None)
task_name_var: ContextVar[str | None] = ContextVar("leadflow_task_name", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def request_id_from_header(value: str | None) -> str:
    """The proxy's id when it is a plausible one, else a fresh one."""
    if value and _ACCEPTABLE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in the stack: everything after it, including error logging, runs with the request id in scope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class ContextFilter(logging.Filter):
    """Puts ``request_id``, ``task_id`` and ``task_name`` on each record (``None`` outside a request or task), and
    a ready-made ``context`` prefix for the plain format."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs 4xx answers after the middleware has returned, passing the request along: its id is on it.
        record.request_id = request_id_var.get() or getattr(getattr(record, "request", None), "request_id", None)
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        parts = []
        if record.request_id:
            parts.append(f"request={record.request_id}")
        if record.task_id:
            parts.append(f"task={record.task_name}[{record.task_id}]")
        record.context = f"[{' '.join(parts)}] " if parts else ""
        return True


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line: ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the request or
    task it belongs to when there is one, ``exc_info`` for errors, and any ``extra={…}`` the call passed."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", "%(message)s")
        super().__init__(*args, **kwargs)
        # The plain format's prefix is not a field of its own; the context fields are added (or left out) below;
        # Django's request object (on django.request records) is summed up by its id, not dumped.
        self._skip_fields.update({"context", "request_id", "task_id", "task_name", "request"})

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        super().add_fields(log_data, record, message_dict)
        for name in ("request_id", "task_id", "task_name"):
            value = getattr(record, name, None)
            if value:
                log_data[name] = value


# Celery -----------------------------------------------------------------------------------------------------------
# Connected in leadflow.celery. Tokens are kept per task id: prerun and postrun of one task run in the same thread.

_task_tokens: dict[str, list] = {}


def task_publish_add_request_id(headers=None, **kwargs) -> None:
    """``before_task_publish``: a task queued while serving a request carries that request's id."""
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(TASK_REQUEST_ID_HEADER, request_id)


def task_enter_log_context(task_id=None, task=None, **kwargs) -> None:
    """``task_prerun``: the task's id and name (and the request that queued it) are in scope while it runs."""
    if task_id is None or task is None:
        return
    entered = [(task_id_var, task_id_var.set(task_id)), (task_name_var, task_name_var.set(task.name))]
    queued_by = getattr(task.request, TASK_REQUEST_ID_HEADER, None)
    if queued_by and not request_id_var.get():
        entered.append((request_id_var, request_id_var.set(queued_by)))
    _task_tokens[task_id] = entered


def task_leave_log_context(task_id=None, **kwargs) -> None:
    """``task_postrun``: back to whatever was in scope before (nothing, in a worker; the request, for eager tasks)."""
    for variable, token in reversed(_task_tokens.pop(task_id, [])):
        variable.reset(token)
