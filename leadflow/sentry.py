"""Error reporting to Sentry, only when ``SENTRY_DSN`` is set (production settings call :func:`sentry_init`).

Django requests and Celery tasks are instrumented by the SDK's own integrations; events are tagged with the
request id and task id that the logs carry (:mod:`leadflow.logs`), so a Sentry issue leads to its log lines.
Personal data (cookies, bodies, user emails) is not sent: ``send_default_pii`` stays off.
"""

from __future__ import annotations

from typing import Any


def _tag_with_log_context(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    from .logs import request_id_var, task_id_var, task_name_var

    tags = event.setdefault("tags", {})
    for name, variable in (("request_id", request_id_var), ("task_id", task_id_var), ("task_name", task_name_var)):
        value = variable.get()
        if value:
            tags[name] = value
    return event


def sentry_init(*, dsn: str, environment: str, release: str | None, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=_tag_with_log_context,
    )
