from django.apps import AppConfig


class LeadsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "leads"

    def ready(self) -> None:
        from . import handlers, signals  # noqa: F401 - registers outbox handlers and signal receivers
