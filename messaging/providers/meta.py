"""WhatsApp through Meta's WhatsApp Cloud API, over httpx.

``POST {WHATSAPP_GRAPH_URL}/v{WHATSAPP_GRAPH_VERSION}/{phone_number_id}/messages`` with a bearer token: a template
(``"type": "template"``, its name, language and body parameters) or, inside the 24-hour window, free text
(``"type": "text"``). Meta answers ``{"messages": [{"id": "wamid.…"}]}``; errors are
``{"error": {"message", "type", "code", "fbtrace_id"}}`` (131047: free text outside the window; 190: bad token).
Templates are listed from ``GET /{waba_id}/message_templates``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from django.conf import settings

from integrations.providers.http import provider_client

from .base import OutboundMessage, SendError, SendResult

# Meta error codes that no retry will change: bad parameters, the window, an unknown template, auth.
PERMANENT_ERRORS = {100, 131008, 131009, 131026, 131047, 131051, 132000, 132001, 132005, 132007, 132012, 190, 10}


class MetaWhatsAppProvider:
    name = "meta"

    def __init__(self, *, access_token: str, phone_number_id: str, business_account_id: str = ""):
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.business_account_id = business_account_id

    def _url(self, path: str) -> str:
        return f"{settings.WHATSAPP_GRAPH_URL}/v{settings.WHATSAPP_GRAPH_VERSION}/{path.lstrip('/')}"

    def _request(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        try:
            response = provider_client().request(
                method,
                self._url(path),
                headers={"Authorization": f"Bearer {self.access_token}"},
                timeout=settings.WHATSAPP_TIMEOUT_S,
                **kwargs,
            )
        except httpx.HTTPError as error:
            raise SendError(f"The WhatsApp Cloud API could not be reached: {error}") from error
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400 or "error" in data:
            error = data.get("error") or {}
            code = error.get("code")
            retryable = response.status_code in (408, 429) or response.status_code >= 500
            if code in PERMANENT_ERRORS:
                retryable = False
            raise SendError(
                f"WhatsApp Cloud API answered {response.status_code}: {error.get('message') or response.text[:200]}",
                retryable=retryable,
                code=code,
            )
        return data

    def send_message(self, message: OutboundMessage) -> SendResult:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        body["to"] = message.to.lstrip("+")
        if message.template_name:
            template: dict[str, Any] = {"name": message.template_name, "language": {"code": message.template_language}}
            if message.template_variables:
                template["components"] = [
                    {"type": "body", "parameters": [{"type": "text", "text": v} for v in message.template_variables]}
                ]
            body.update(type="template", template=template)
        else:
            body.update(type="text", text={"preview_url": False, "body": message.body})
        data = self._request("POST", f"{self.phone_number_id}/messages", json=body)
        messages = data.get("messages") or [{}]
        message_id = str(messages[0].get("id") or "")
        if not message_id:
            raise SendError("The WhatsApp Cloud API answered without a message id.", retryable=False)
        return SendResult(
            provider=self.name,
            message_id=message_id,
            cost=settings.USAGE_COSTS["whatsapp"],
            currency=settings.USAGE_COST_CURRENCY,
            cost_is_estimate=True,  # Meta bills conversations later, by category
            status="queued",
        )

    def templates(self) -> Iterator[dict[str, Any]]:
        """Every message template of the business account, following Meta's cursor paging."""
        if not self.business_account_id:
            return
        params: dict[str, Any] = {"fields": "name,language,status,category,components,rejected_reason", "limit": 100}
        path = f"{self.business_account_id}/message_templates"
        while True:
            data = self._request("GET", path, params=params)
            yield from data.get("data") or []
            after = ((data.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (data.get("paging") or {}).get("next"):
                return
            params = {**params, "after": after}
