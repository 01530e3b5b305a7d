from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"

    def ready(self):
        import stripe
        from django.conf import settings

        # Every Stripe call (ours and dj-stripe's) goes to STRIPE_API_BASE; tests point it at a local stand-in.
        stripe.api_base = settings.STRIPE_API_BASE

        from . import stripe_receivers  # noqa: F401 - connects the dj-stripe receivers
