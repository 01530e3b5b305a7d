from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self) -> None:
        from billing.metering import register_usage_source

        from . import handlers, signals  # noqa: F401 - outbox handlers, anymail and organization receivers
        from .services.metering import usage_invoice_lines

        # Every metered send (messages to leads, deliveries to buyers) is invoiced with the month's usage.
        register_usage_source(usage_invoice_lines)
