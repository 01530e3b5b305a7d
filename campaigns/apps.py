from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self):
        from leads.intake.custom_fields import register_schema_provider
        from leads.intake.mapping import register_mapper

        from . import intake, signals  # noqa: F401 - the intake hooks and the buyer-webhook metering hook

        # The supplier API's `campaign` routes the lead; the campaign's category validates its custom fields.
        register_mapper("api")(intake.api_payload_shape)
        register_schema_provider(intake.category_schema_for_submission)
