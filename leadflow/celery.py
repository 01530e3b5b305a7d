import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"leadflow.settings.{os.environ.get('DJANGO_ENV', 'dev')}")

app = Celery("leadflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
