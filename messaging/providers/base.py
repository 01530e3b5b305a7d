"""The shape every messaging provider has: send a message, get the provider's message id and what the send cost.

``send_sms``/``send_whatsapp`` are the buyer alerts' plain sends; ``send_message`` takes an ``OutboundMessage``
(a conversation's reply, a template outside WhatsApp's window, an email) and is what the sending service uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class OutboundMessage:
    """One message as a provider needs it. ``template_name`` is the provider's handle (a Twilio Content SID, a Meta
    template name); ``template_variables`` fill its numbered variables in order."""

    channel: str  # whatsapp, sms, email
    to: str
    body: str = ""
    from_address: str = ""
    subject: str = ""
    html: str = ""
    template_name: str = ""
    template_language: str = "en"
    template_variables: tuple[str, ...] = ()
    status_callback: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    reference: str = ""  # our message's id, for logs and email headers


class MessagingProvider(Protocol):
    name: str

    def send_sms(self, *, to: str, body: str) -> SendResult: ...

    def send_whatsapp(self, *, to: str, body: str, variables: dict[str, str] | None = None) -> SendResult:
        """``variables`` fill an approved template when one is configured (needed outside WhatsApp's 24-hour
        window); otherwise ``body`` goes as free text."""


class ConversationProvider(Protocol):
    name: str

    def send_message(self, message: OutboundMessage) -> SendResult: ...
