"""The integrations app's tables, one module per subsystem."""

from .connections import EncryptedJSONField, IntegrationConnection  # noqa: F401
from .conversions import ConversionEvent  # noqa: F401
from .webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage  # noqa: F401
