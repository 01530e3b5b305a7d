"""SMS and WhatsApp through Twilio's Programmable Messaging, with the official ``twilio`` SDK.

``POST {TWILIO_API_URL}/2010-04-01/Accounts/{AccountSid}/Messages.json`` (basic auth, form-encoded ``To``,
``From`` or ``MessagingServiceSid``, ``Body``, or ``ContentSid`` + ``ContentVariables`` for a WhatsApp template).
WhatsApp templates come from the Content API, ``GET {TWILIO_CONTENT_API_URL}/v1/ContentAndApprovals`` (each content
with its WhatsApp approval request: name, category, status, rejection reason). The SDK's HTTP client is pointed at
``TWILIO_API_URL`` and ``TWILIO_CONTENT_API_URL`` (Twilio's own by default), so tests and the benchmark talk to
local stand-ins at the real HTTP boundary.

Costs: Twilio prices a message after it is sent, so the create response's ``price`` is usually empty; then the
configured estimate is used and the usage record says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .base import OutboundMessage, SendError, SendResult

TWILIO_API_BASE = "https://api.twilio.com"
TWILIO_CONTENT_API_BASE = "https://content.twilio.com"


class BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client with Twilio's API origins replaced (a regional proxy, a stand-in): ``origins`` maps
    an origin the SDK calls (``https://api.twilio.com``) to the one to call instead."""

    def __init__(self, *, origins: dict[str, str], timeout: float):
        super().__init__(timeout=timeout)
        self.origins = {origin: replacement.rstrip("/") for origin, replacement in origins.items()}

    def request(self, method, url, *args, **kwargs):
        for origin, replacement in self.origins.items():
            if url.startswith(origin + "/") or url == origin:
                url = replacement + url[len(origin) :]
                break
        return super().request(method, url, *args, **kwargs)


@contextmanager
def _as_send_errors():
    """Twilio's failures as ``SendError``: an error answer (``TwilioRestException``, or a page the SDK could not
    load, which comes as ``TwilioException("Unable to fetch page", response)``) says Twilio's status and message;
    anything else means Twilio was not reached."""
    try:
        yield
    except TwilioRestException as error:
        raise SendError(
            f"Twilio answered {error.status}: {error.msg}", retryable=_retryable(error.status), code=error.code
        ) from error
    except TwilioException as error:
        response = error.args[1] if len(error.args) > 1 else None
        if getattr(response, "status_code", None) is None:
            raise SendError(f"Twilio could not be reached: {error}") from error
        code, detail = _error_body(response.text)
        raise SendError(
            f"Twilio answered {response.status_code}: {detail}", retryable=_retryable(response.status_code), code=code
        ) from error
    except requests.RequestException as error:
        raise SendError(f"Twilio could not be reached: {error}") from error


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class TwilioProvider:
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, base_url: str, timeout: float, content_base_url: str = ""):
        origins = {TWILIO_API_BASE: base_url, TWILIO_CONTENT_API_BASE: content_base_url or TWILIO_CONTENT_API_BASE}
        self.client = Client(account_sid, auth_token, http_client=BaseUrlHttpClient(origins=origins, timeout=timeout))

    def _create(self, channel: str, **params) -> SendResult:
        with _as_send_errors():
            message = self.client.messages.create(**{k: v for k, v in params.items() if v})
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

    def whatsapp_templates(self) -> Iterator[dict[str, Any]]:
        """Every content of the account with its WhatsApp approval request, as the Content API lists them (the SDK
        follows the pages)."""
        with _as_send_errors():
            for content in self.client.content.v1.content_and_approvals.stream(page_size=100):
                yield {
                    "sid": content.sid or "",
                    "friendly_name": content.friendly_name or "",
                    "language": content.language or "",
                    "types": content.types or {},
                    "approval_requests": content.approval_requests or {},
                }

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


def _error_body(text: str) -> tuple[int | None, str]:
    """Twilio's error answer: ``{"code": 20003, "message": "Authenticate", "more_info": …, "status": 401}``."""
    try:
        body = json.loads(text or "{}")
    except ValueError:
        return None, (text or "")[:200]
    return body.get("code"), str(body.get("message") or "")[:200]


def _price(value) -> Decimal | None:
    """Twilio reports what a message cost as a negative amount ("-0.00750"), or nothing yet."""
    if value in (None, ""):
        return None
    try:
        return abs(Decimal(str(value)))
    except InvalidOperation:
        return None
