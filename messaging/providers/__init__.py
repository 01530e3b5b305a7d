"""Sending SMS and WhatsApp messages: ``send_sms`` and ``send_whatsapp`` through the configured provider.

Twilio when ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN`` are set, otherwise the logging provider, so everything
runs offline. Each returns a ``SendResult`` (the provider's message id and cost) or raises ``SendError``.
"""

from __future__ import annotations

import threading

from django.conf import settings

from .base import ConversationProvider, MessagingProvider, OutboundMessage, SendError, SendResult
from .offline import LoggingProvider

__all__ = [
    "ConversationProvider",
    "MessagingProvider",
    "OutboundMessage",
    "SendError",
    "SendResult",
    "conversation_provider",
    "messaging_provider",
    "send_sms",
    "send_whatsapp",
]

_provider: MessagingProvider | None = None
_provider_key: tuple | None = None
_lock = threading.Lock()


def messaging_provider() -> MessagingProvider:
    """The process's provider, built once (its HTTP connections are kept) and again if the settings change."""
    global _provider, _provider_key
    key = (
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        settings.TWILIO_API_URL,
        settings.TWILIO_CONTENT_API_URL,
    )
    with _lock:
        if _provider is None or _provider_key != key:
            if settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN:
                from .twilio import TwilioProvider

                _provider = TwilioProvider(
                    account_sid=settings.TWILIO_ACCOUNT_SID,
                    auth_token=settings.TWILIO_AUTH_TOKEN,
                    base_url=settings.TWILIO_API_URL,
                    content_base_url=settings.TWILIO_CONTENT_API_URL,
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


_logging = LoggingProvider()


def twilio_configured() -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN)


def conversation_provider(channel: str, messaging_settings) -> ConversationProvider:
    """Who sends an organization's ``channel`` messages: email through the email backend; SMS through Twilio;
    WhatsApp through Twilio or Meta's Cloud API as the organization chose. Without credentials, the log."""
    if channel == "email":
        from .email import EmailProvider

        return EmailProvider()
    if channel == "whatsapp" and messaging_settings.whatsapp_provider == "meta":
        from ..services.channels import meta_access_token
        from .meta import MetaWhatsAppProvider

        token = meta_access_token(messaging_settings)
        if token and messaging_settings.meta_phone_number_id:
            return MetaWhatsAppProvider(
                access_token=token,
                phone_number_id=messaging_settings.meta_phone_number_id,
                business_account_id=messaging_settings.meta_business_account_id,
            )
        return _logging
    if twilio_configured():
        return messaging_provider()
    return _logging
