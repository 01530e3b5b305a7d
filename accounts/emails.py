"""Transactional emails of the accounts app, rendered from templates with a text and an HTML part."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from billing.models import Subscription

from .models import Invitation, Organization, User


def _send(*, to: str, subject: str, template: str, context: dict) -> None:
    context = {**context, "site_url": settings.SITE_URL}
    text = render_to_string(f"accounts/email/{template}.txt", context)
    html = render_to_string(f"accounts/email/{template}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[to])
    message.attach_alternative(html, "text/html")
    message.send()


def welcome_email_send(*, user: User, organization: Organization) -> None:
    subscription = Subscription.objects.unscoped().filter(organization=organization).select_related("plan").first()
    _send(
        to=user.email,
        subject=f"Welcome to LeadFlow, {organization.name} is ready",
        template="welcome",
        context={
            "user": user,
            "organization": organization,
            "subscription": subscription,
            "dashboard_url": settings.SITE_URL + reverse("dashboard"),
        },
    )


def invitation_email_send(*, invitation: Invitation) -> None:
    _send(
        to=invitation.email,
        subject=f"You're invited to {invitation.organization.name} on LeadFlow",
        template="invitation",
        context={
            "invitation": invitation,
            "accept_url": settings.SITE_URL + reverse("invitation_accept", args=[invitation.token]),
        },
    )
