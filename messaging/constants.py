"""Choices of the messaging app."""

from django.db import models


class Channel(models.TextChoices):
    """What a usage record meters. Webhooks are metered here too: they are rebilled the same way."""

    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"
