from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import signals

        # After django.contrib.sites creates its default "example.com" row (also after every test flush).
        post_migrate.connect(signals.name_site_after_leadflow, sender=self)
