"""Emails of the integrations app."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.urls import NoReverseMatch, reverse

from accounts.constants import Role
from accounts.models import Membership

from .models import WebhookEndpoint


def _organization_owner_emails(organization) -> list[str]:
    return list(
        Membership.objects.unscoped()
        .filter(organization=organization, role=Role.OWNER, user__is_active=True)
        .values_list("user__email", flat=True)
    )


def webhook_endpoint_disabled_email_send(*, endpoint_id: int) -> int:
    """Tell the owners an endpoint was switched off and why. Returns how many emails were sent."""
    endpoint = WebhookEndpoint.objects.unscoped().select_related("organization").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.is_active:
        return 0  # deleted or turned back on before the email went out
    recipients = _organization_owner_emails(endpoint.organization)
    if not recipients:
        return 0
    try:
        page = settings.SITE_URL + reverse("integrations:webhooks")
    except NoReverseMatch:
        page = settings.SITE_URL
    send_mail(
        subject=f"Webhook endpoint disabled: {endpoint.url}",
        message=(
            f"LeadFlow stopped sending webhooks from {endpoint.organization.name} to {endpoint.url}.\n\n"
            f"Why: {endpoint.disabled_reason}\n\n"
            "Events that happen while it is off are not queued for it. Once the receiver works again, turn the "
            f"endpoint back on and replay the deliveries you need:\n{page}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
