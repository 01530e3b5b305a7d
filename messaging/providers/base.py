"""The shape every messaging provider has: send an SMS or a WhatsApp message, get the provider's message id and
what the send cost. Small on purpose: conversations (inbound messages, status callbacks) build on it later."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    provider: str
    message_id: str
    cost: Decimal  # what the provider charged, or the configured estimate when it did not say (cost_is_estimate)
    currency: str
    cost_is_estimate: bool = False
    status: str = "sent"  # the provider's own word: queued, accepted, sent …


class SendError(Exception):
    """The provider refused or could not be reached. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True, code: int | str | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code


class MessagingProvider(Protocol):
    name: str

    def send_sms(self, *, to: str, body: str) -> SendResult: ...

    def send_whatsapp(self, *, to: str, body: str, variables: dict[str, str] | None = None) -> SendResult:
        """``variables`` fill an approved template when one is configured (needed outside WhatsApp's 24-hour
        window); otherwise ``body`` goes as free text."""
