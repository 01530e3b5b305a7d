import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"leadflow.settings.{os.environ.get('DJANGO_ENV', 'dev')}")

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
