import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"leadflow.settings.{os.environ.get('DJANGO_ENV', 'dev')}")

# Redis keeps a list per priority step (0, 3, 6, 9) and workers take the lowest step first. Bulk jobs (imports,
# syncs, rescoring) go last, so they never hold up a lead's own steps. Those steps share one priority on purpose:
# in arrival order, an outbox task finds every event committed while it waited and handles them as one batch;
# ahead of the fetches it would run once per lead, which under a burst costs several times the CPU.
PRIORITY_BULK = 9

app = Celery("leadflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _recycle_database_connections(task=None, **kwargs):
    """Around each task as around each request: drop connections that broke or outlived CONN_MAX_AGE. Not for
    eager tasks, which run inside the caller's request (or test) and its transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


# Logs: every line a task writes names the task (and the request that queued it).
def _connect_log_context() -> None:
    from .logs import task_enter_log_context, task_leave_log_context, task_publish_add_request_id

    signals.before_task_publish.connect(task_publish_add_request_id, weak=False)
    signals.task_prerun.connect(task_enter_log_context, weak=False)
    signals.task_postrun.connect(task_leave_log_context, weak=False)


_connect_log_context()


@signals.setup_logging.connect
def _log_with_django_settings(**kwargs):
    """With a receiver here Celery leaves logging alone: workers and beat log through settings.LOGGING (JSON lines
    with task ids in production), like the web processes."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


# Each worker writes a heartbeat to Redis every few seconds (the admin's system health page reads them).
def _add_worker_steps() -> None:
    from .operations.heartbeats import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)


_add_worker_steps()


@signals.worker_ready.connect
def _serve_worker_metrics(sender=None, **kwargs):
    """A worker on a machine without a web process serves its Prometheus metrics itself (METRICS_WORKER_PORT)."""
    from django.conf import settings

    if settings.METRICS_WORKER_PORT:
        from .metrics import worker_metrics_serve

        worker_metrics_serve(address=settings.METRICS_WORKER_ADDRESS, port=settings.METRICS_WORKER_PORT)
