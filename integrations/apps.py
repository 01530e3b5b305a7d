from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401 - the deploy check for INTEGRATIONS_ENCRYPTION_KEY
            handlers,  # noqa: F401 - registers the outbox handlers that send outbound webhooks
            signals,  # noqa: F401 - forgets cached connections when one changes
        )
        from .providers import facebook, generic, google_ads, linkedin  # noqa: F401 - register their intake mappers
