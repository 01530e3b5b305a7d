"""Sending SMS and WhatsApp messages: ``send_sms`` and ``send_whatsapp`` through the configured provider.

Twilio when ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN`` are set, otherwise the logging provider, so everything
runs offline. Each returns a ``SendResult`` (the provider's message id and cost) or raises ``SendError``.
"""

from __future__ import annotations

import threading

from django.conf import settings

from .base import MessagingProvider, SendError, SendResult
from .offline import LoggingProvider

__all__ = ["MessagingProvider", "SendError", "SendResult", "messaging_provider", "send_sms", "send_whatsapp"]

_provider: MessagingProvider | None = None
_provider_key: tuple | None = None
_lock = threading.Lock()


def messaging_provider() -> MessagingProvider:
    """The process's provider, built once (its HTTP connections are kept) and again if the settings change."""
    global _provider, _provider_key
    key = (settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_API_URL)
    with _lock:
        if _provider is None or _provider_key != key:
            if settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN:
                from .twilio import TwilioProvider

                _provider = TwilioProvider(
                    account_sid=settings.TWILIO_ACCOUNT_SID,
                    auth_token=settings.TWILIO_AUTH_TOKEN,
                    base_url=settings.TWILIO_API_URL,
                    timeout=settings.TWILIO_TIMEOUT_S,
                )
            else:
                _provider = LoggingProvider()
            _provider_key = key
        return _provider


def send_sms(*, to: str, body: str) -> SendResult:
    if not to:
        raise SendError("No phone number to send the SMS to.", retryable=False)
    return messaging_provider().send_sms(to=to, body=body)


def send_whatsapp(*, to: str, body: str, variables: dict[str, str] | None = None) -> SendResult:
    if not to:
        raise SendError("No phone number to send the WhatsApp message to.", retryable=False)
    return messaging_provider().send_whatsapp(to=to, body=body, variables=variables)
