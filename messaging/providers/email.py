"""Email through Django's email backend: the console by default, SMTP from ``EMAIL_URL``, or any ESP through
django-anymail (``EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend``). With anymail the ESP's message id comes back
on ``message.anymail_status``; otherwise our own ``Message-ID`` header is the id (replies quote it)."""

from __future__ import annotations

from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from .base import OutboundMessage, SendError, SendResult


class EmailProvider:
    @property
    def name(self) -> str:
        backend = settings.EMAIL_BACKEND
        return "anymail" if backend.startswith("anymail.") else f"email:{backend.rsplit('.', 2)[-2]}"

    def send_message(self, message: OutboundMessage) -> SendResult:
        domain = (
            (message.from_address.rsplit("@", 1)[-1].strip("> ") or "leadflow.local")
            if message.from_address
            else "leadflow.local"
        )
        message_id = make_msgid(domain=domain)
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=message.from_address or None,
            to=[message.to],
            headers={"Message-ID": message_id, **message.headers},
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            email.send()
        except Exception as error:  # SMTP refusals, ESP errors and outages alike
            raise SendError(f"{type(error).__name__}: {error}") from error
        status = getattr(email, "anymail_status", None)
        if status is not None and status.message_id:
            message_id = str(status.message_id)
        return SendResult(
            provider=self.name,
            message_id=message_id.strip("<>"),
            cost=settings.USAGE_COSTS["email"],
            currency=settings.USAGE_COST_CURRENCY,
            cost_is_estimate=True,
            status="sent",
        )
