"""SMS and WhatsApp through Twilio's Programmable Messaging, with the official ``twilio`` SDK.

``POST {TWILIO_API_URL}/2010-04-01/Accounts/{AccountSid}/Messages.json`` (basic auth, form-encoded ``To``,
``From`` or ``MessagingServiceSid``, ``Body``, or ``ContentSid`` + ``ContentVariables`` for a WhatsApp template).
The SDK's HTTP client is pointed at ``TWILIO_API_URL`` (Twilio's own by default), so tests and the benchmark talk
to a local stand-in at the real HTTP boundary.

Costs: Twilio prices a message after it is sent, so the create response's ``price`` is usually empty; then the
configured estimate is used and the usage record says so.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .base import OutboundMessage, SendError, SendResult

TWILIO_API_BASE = "https://api.twilio.com"


class BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client with the API's origin replaced by ``base_url`` (a regional proxy, a stand-in)."""

    def __init__(self, *, base_url: str, timeout: float):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API_BASE):
            url = self.base_url + url[len(TWILIO_API_BASE) :]
        return super().request(method, url, *args, **kwargs)


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class TwilioProvider:
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, base_url: str, timeout: float):
        self.client = Client(account_sid, auth_token, http_client=BaseUrlHttpClient(base_url=base_url, timeout=timeout))

    def _create(self, channel: str, **params) -> SendResult:
        try:
            message = self.client.messages.create(**{k: v for k, v in params.items() if v})
        except TwilioRestException as error:
            raise SendError(
                f"Twilio answered {error.status}: {error.msg}", retryable=_retryable(error.status), code=error.code
            ) from error
        except (TwilioException, requests.RequestException) as error:
            raise SendError(f"Twilio could not be reached: {error}") from error
        cost, estimate = _price(message.price), False
        if cost is None:
            cost, estimate = settings.USAGE_COSTS[channel], True
        return SendResult(
            provider=self.name,
            message_id=message.sid or "",
            cost=cost,
            currency=(message.price_unit or settings.USAGE_COST_CURRENCY).upper()[:3],
            cost_is_estimate=estimate,
            status=str(message.status or ""),
        )

    def send_sms(self, *, to: str, body: str) -> SendResult:
        return self._create(
            "sms",
            to=to,
            from_=settings.TWILIO_SMS_FROM,
            messaging_service_sid=settings.TWILIO_MESSAGING_SERVICE_SID,
            body=body,
        )

    def send_whatsapp(self, *, to: str, body: str, variables: dict[str, str] | None = None) -> SendResult:
        template = settings.TWILIO_WHATSAPP_CONTENT_SID
        return self._create(
            "whatsapp",
            to=f"whatsapp:{to}",
            from_=f"whatsapp:{settings.TWILIO_WHATSAPP_FROM}" if settings.TWILIO_WHATSAPP_FROM else "",
            messaging_service_sid=settings.TWILIO_MESSAGING_SERVICE_SID,
            content_sid=template,
            content_variables=json.dumps(variables or {}) if template else "",
            body="" if template else body,
        )

    def send_message(self, message: OutboundMessage) -> SendResult:
        """A conversation's message: free text, or a WhatsApp template (``ContentSid`` + ``ContentVariables``, its
        numbered variables as ``{"1": …}``), with our status callback so delivery and read receipts come back."""
        service = "" if message.from_address else settings.TWILIO_MESSAGING_SERVICE_SID
        if message.channel == "whatsapp":
            sender = message.from_address or settings.TWILIO_WHATSAPP_FROM
            variables = {str(n): value for n, value in enumerate(message.template_variables, start=1)}
            return self._create(
                "whatsapp",
                to=f"whatsapp:{message.to}",
                from_=f"whatsapp:{sender}" if sender else "",
                messaging_service_sid=service,
                content_sid=message.template_name,
                content_variables=json.dumps(variables) if message.template_name else "",
                body="" if message.template_name else message.body,
                status_callback=message.status_callback,
            )
        return self._create(
            "sms",
            to=message.to,
            from_=message.from_address or settings.TWILIO_SMS_FROM,
            messaging_service_sid=service,
            body=message.body,
            status_callback=message.status_callback,
        )


def _price(value) -> Decimal | None:
    """Twilio reports what a message cost as a negative amount ("-0.00750"), or nothing yet."""
    if value in (None, ""):
        return None
    try:
        return abs(Decimal(str(value)))
    except InvalidOperation:
        return None
