"""The welcome email after a checkout: for a new account it carries a one-time sign-in link to onboarding."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Organization, User

from .checkout import magic_link_create
from .models import Subscription


def checkout_welcome_send(*, user_id: int, organization_id: int, new_account: bool) -> None:
    user = User.objects.filter(pk=user_id).first()
    organization = Organization.objects.filter(pk=organization_id).first()
    if user is None or organization is None:
        return
    if new_account:
        login_url = magic_link_create(user=user, next_url=reverse("billing:welcome"))
    else:
        login_url = settings.SITE_URL + reverse("account_login") + "?next=" + reverse("billing:welcome")
    context = {
        "user": user,
        "organization": organization,
        "subscription": Subscription.objects.unscoped()
        .filter(organization=organization)
        .select_related("plan")
        .first(),
        "login_url": login_url,
        "new_account": new_account,
        "magic_link_hours": settings.MAGIC_LINK_TTL_HOURS,
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"Welcome to LeadFlow: {organization.name} is ready",
        body=render_to_string("billing/email/checkout_welcome.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("billing/email/checkout_welcome.html", context), "text/html")
    message.send()
