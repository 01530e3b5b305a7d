"""Plan checkouts: from the public pricing page (checkout first, account after) and from an organization's
billing page. ``plan_checkout_start`` sends the payer to the provider; ``plan_checkout_complete`` runs when the
provider confirms (its verified webhook, or the offline page) and is safe to run twice.

Checkout first: when the email has no account yet, the confirmation creates the user (no password), the
organization (named and placed from the checkout's details), its subscription, and a welcome email with a
one-time sign-in link that lands on onboarding, prefilled from those details.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services import audit_record, organization_create
from leadflow.exceptions import ServiceError

from .lifecycle import subscription_mirror, subscription_transition
from .models import (
    CheckoutStatus,
    MagicLoginLink,
    Plan,
    PlanCheckout,
    Subscription,
    SubscriptionStatus,
)
from .providers import ProviderError, provider_name_for_currency, provider_named

logger = logging.getLogger(__name__)

# Onboarding fields a checkout may carry (the business details form's names).
CHECKOUT_DETAIL_FIELDS = ("name", "country", "currency", "timezone", "industry", "phone", "tax_id", "address")


@transaction.atomic
def plan_checkout_start(
    *,
    email: str,
    plan: Plan,
    interval: str,
    currency: str,
    details: dict | None = None,
    organization: Organization | None = None,
    success_url: str,
    cancel_url: str,
) -> PlanCheckout:
    if plan.price_for(currency, interval) is None:
        raise ServiceError(f"The {plan.name} plan is not sold in {currency}.", field="currency")
    if (
        organization is None
        and not settings.BILLING_OFFLINE_CHECKOUT
        and provider_name_for_currency(currency) == "offline"
    ):
        raise ServiceError("Online payments are not set up yet: contact us to subscribe.")
    subscription = Subscription.objects.unscoped().filter(organization=organization).first() if organization else None
    if subscription and subscription.status == SubscriptionStatus.ACTIVE and subscription.provider_subscription_id:
        raise ServiceError("This workspace is already paying: change the plan instead.", field="plan")
    if subscription and subscription.provider_subscription_id:
        provider_name = subscription.provider
    else:
        provider_name = provider_name_for_currency(currency)
    checkout = PlanCheckout.objects.unscoped().create(
        token=secrets.token_urlsafe(24),
        email=User.objects.normalize_email(email).strip().lower(),
        plan=plan,
        interval=interval,
        currency=currency,
        provider=provider_name,
        details={k: str(v) for k, v in (details or {}).items() if k in CHECKOUT_DETAIL_FIELDS and v not in (None, "")},
        organization=organization,
    )
    try:
        start = provider_named(provider_name).plan_checkout(
            checkout=checkout, success_url=success_url, cancel_url=cancel_url
        )
    except ProviderError as error:
        raise ServiceError(error.message) from error
    checkout.provider_reference = start.reference
    checkout.checkout_url = start.url
    checkout.checkout_options = start.options
    checkout.save(update_fields=["provider_reference", "checkout_url", "checkout_options"])
    return checkout


def _organization_name(checkout: PlanCheckout) -> str:
    return checkout.details.get("name") or checkout.email.split("@", 1)[1].split(".")[0].title()


@transaction.atomic
def plan_checkout_complete(
    *,
    checkout: PlanCheckout,
    occurred_at: datetime,
    provider_subscription_id: str = "",
    provider_customer_id: str = "",
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> Subscription:
    """The provider confirmed the checkout: the subscription is active on the checkout's plan (a signup's user
    and organization are made first). Running it again changes nothing."""
    checkout = PlanCheckout.objects.unscoped().select_for_update().get(pk=checkout.pk)
    if checkout.status == CheckoutStatus.COMPLETED:
        return Subscription.objects.unscoped().get(organization_id=checkout.organization_id)
    organization = checkout.organization
    is_signup, new_user = organization is None, None
    if is_signup:
        organization, new_user = _signup(checkout)
        checkout.organization = organization
    subscription = (
        Subscription.objects.unscoped().select_for_update().select_related("plan").get(organization=organization)
    )
    subscription.provider = checkout.provider
    if provider_subscription_id and provider_subscription_id != subscription.provider_subscription_id:
        # A new provider subscription (a first one, or after a cancellation): the old one's event times do not
        # apply to it.
        subscription.provider_subscription_id = provider_subscription_id
        subscription.provider_event_at = None
    if provider_customer_id:
        subscription.provider_customer_id = provider_customer_id
    subscription.interval = checkout.interval
    subscription.currency = checkout.currency
    subscription.cancel_at_period_end = False
    subscription.save()
    reason = f"checkout completed ({checkout.get_provider_display()})"
    subscription_mirror(
        subscription=subscription,
        occurred_at=occurred_at,
        reason=reason,
        plan=checkout.plan,
        period_start=period_start,
        period_end=period_end,
    )
    # Paid at checkout: active, from any status (a trial, past due, suspended or cancelled before).
    subscription_transition(subscription=subscription, status=SubscriptionStatus.ACTIVE, reason=reason, at=occurred_at)
    checkout.status = CheckoutStatus.COMPLETED
    checkout.completed_at = timezone.now()
    checkout.save(update_fields=["status", "completed_at", "organization"])
    audit_record(
        organization=organization,
        action="subscription.checkout_completed",
        target=subscription,
        changes={"plan": checkout.plan.code, "interval": checkout.interval, "provider": checkout.provider},
    )
    if is_signup:
        owner = new_user or User.objects.get(email__iexact=checkout.email)
        transaction.on_commit(lambda: _queue_welcome(owner.pk, organization.pk, new_user is not None))
    return subscription


def _signup(checkout: PlanCheckout) -> tuple[Organization, User | None]:
    user = User.objects.filter(email__iexact=checkout.email).first()
    new_user = None
    if user is None:
        user = User(email=checkout.email)
        user.set_unusable_password()
        user.save()
        new_user = user
    details = {k: v for k, v in checkout.details.items() if k in CHECKOUT_DETAIL_FIELDS and k != "name"}
    details["currency"] = checkout.currency
    organization = organization_create(
        owner=user, name=_organization_name(checkout), plan=checkout.plan, welcome_email=False, **details
    )
    return organization, new_user


def _queue_welcome(user_id: int, organization_id: int, new_account: bool) -> None:
    from .tasks import send_checkout_welcome

    send_checkout_welcome.delay(user_id, organization_id, new_account)


# One-time sign-in links ----------------------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def magic_link_create(*, user: User, next_url: str = "") -> str:
    """A sign-in URL for ``user`` that works once, for MAGIC_LINK_TTL_HOURS; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    MagicLoginLink.objects.create(
        user=user,
        token_hash=_hash(token),
        next_url=next_url,
        expires_at=timezone.now() + timedelta(hours=settings.MAGIC_LINK_TTL_HOURS),
    )
    return settings.SITE_URL + reverse("billing:magic_login", args=[token])


def magic_link_peek(*, token: str) -> MagicLoginLink | None:
    link = MagicLoginLink.objects.select_related("user").filter(token_hash=_hash(token)).first()
    if link is None or link.used_at or link.expires_at <= timezone.now():
        return None
    return link


@transaction.atomic
def magic_link_use(*, token: str) -> MagicLoginLink:
    link = MagicLoginLink.objects.select_for_update().select_related("user").filter(token_hash=_hash(token)).first()
    if link is None:
        raise ServiceError("This sign-in link is not valid.")
    if link.used_at:
        raise ServiceError("This sign-in link was already used. Sign in with your email instead.")
    if link.expires_at <= timezone.now():
        raise ServiceError("This sign-in link has expired. Sign in with your email instead.")
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    return link
