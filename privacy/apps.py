from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from . import sources  # noqa: F401 - registers the built-in person data sources
