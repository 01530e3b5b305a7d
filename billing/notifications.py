"""Telling an organization's owners about billing: one function, a list of channels.

Email sends today. WhatsApp arrives with the messaging issue: until then its channel is a logging backend that
says plainly that nothing was sent; ``BILLING_WHATSAPP_CHANNEL`` names the class that replaces it (anything with
``send(*, organization, recipients, subject, text)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

from accounts.constants import Role
from accounts.models import Membership, User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    subject: str
    template: str  # billing/email/<template>.txt and .html
    context: dict


class EmailChannel:
    name = "email"

    def send(self, *, organization, recipients: list[User], notice: Notice) -> int:
        context = {**notice.context, "organization": organization, "site_url": settings.SITE_URL}
        text = render_to_string(f"billing/email/{notice.template}.txt", context)
        html = render_to_string(f"billing/email/{notice.template}.html", context)
        sent = 0
        for user in recipients:
            message = EmailMultiAlternatives(subject=notice.subject, body=text, to=[user.email])
            message.attach_alternative(html, "text/html")
            message.send()
            sent += 1
        return sent


class LoggingWhatsAppChannel:
    """No WhatsApp sender exists yet: log what would have gone out, and send nothing."""

    name = "whatsapp"

    def send(self, *, organization, recipients: list[User], notice: Notice) -> int:
        logger.info(
            "whatsapp channel not configured: billing notice %r for organization %s not sent to %d owner(s)",
            notice.subject,
            organization.pk,
            len(recipients),
        )
        return 0


def _channel(name: str):
    if name == "email":
        return EmailChannel()
    if name == "whatsapp":
        return import_string(settings.BILLING_WHATSAPP_CHANNEL)()
    raise ValueError(f"unknown notification channel {name!r}")


def owners_of(organization) -> list[User]:
    return [
        membership.user
        for membership in Membership.objects.unscoped()
        .filter(organization=organization, role=Role.OWNER)
        .select_related("user")
        .order_by("pk")
    ]


def notify_owners(*, organization, notice: Notice, channels: list[str] | None = None) -> dict[str, int]:
    """Send ``notice`` to the owners on each channel (``BILLING_NOTIFICATION_CHANNELS`` by default); returns how
    many messages each channel sent."""
    recipients = owners_of(organization)
    return {
        name: _channel(name).send(organization=organization, recipients=recipients, notice=notice)
        for name in (channels if channels is not None else settings.BILLING_NOTIFICATION_CHANNELS)
    }
