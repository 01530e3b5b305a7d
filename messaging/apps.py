from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self) -> None:
        from . import handlers, signals  # noqa: F401 - outbox handlers, anymail and organization receivers
