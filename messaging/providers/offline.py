"""The offline provider: writes what would have been sent to the log, like Django's console email backend.

Used whenever no provider credentials are configured, so development, tests and the benchmark run without a
network. Sends cost the configured estimate (``USAGE_COST_SMS``, ``USAGE_COST_WHATSAPP``), so metering and
rebilling behave exactly as they will with a real provider.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings

from .base import OutboundMessage, SendResult

logger = logging.getLogger("messaging.outbox")


class LoggingProvider:
    name = "log"

    def _result(self, channel: str, cost: str) -> SendResult:
        return SendResult(
            provider=self.name,
            message_id=f"log-{channel}-{uuid.uuid4().hex[:16]}",
            cost=settings.USAGE_COSTS[cost],
            currency=settings.USAGE_COST_CURRENCY,
            cost_is_estimate=True,
        )

    def send_sms(self, *, to: str, body: str) -> SendResult:
        result = self._result("sms", "sms")
        logger.info("SMS %s to %s: %s", result.message_id, to, body)
        return result

    def send_whatsapp(self, *, to: str, body: str, variables: dict[str, str] | None = None) -> SendResult:
        result = self._result("wa", "whatsapp")
        logger.info("WhatsApp %s to %s: %s %s", result.message_id, to, body, variables or "")
        return result

    def send_message(self, message: OutboundMessage) -> SendResult:
        result = self._result(message.channel[:2], message.channel)
        template = (
            f" [template {message.template_name} {list(message.template_variables)}]" if message.template_name else ""
        )
        logger.info("%s %s to %s:%s %s", message.channel, result.message_id, message.to, template, message.body)
        return result
