"""Payment providers behind one interface, chosen per organization.

``provider_for`` picks: an organization already paying through a provider stays with it; otherwise
``BILLING_PROVIDER`` decides, and ``auto`` (the default) means Razorpay for INR and Stripe for everything else —
each only when its keys are set — and the offline provider when none is, so LeadFlow runs with no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from ..models import BillingProvider


class ProviderError(Exception):
    """The provider refused or could not be reached; ``message`` is fit to show."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CheckoutStart:
    """Where to send the payer: ``url`` (a hosted page), and for Razorpay the Checkout.js ``options``."""

    provider: str
    reference: str
    url: str = ""
    options: dict = field(default_factory=dict)


def razorpay_configured() -> bool:
    return bool(settings.RAZORPAY_KEY_ID and settings.RAZORPAY_KEY_SECRET)


def stripe_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def provider_name_for_currency(currency: str) -> str:
    choice = settings.BILLING_PROVIDER
    if choice != "auto":
        if choice not in BillingProvider.values:
            raise ValueError(f"BILLING_PROVIDER={choice!r} is not one of auto, {', '.join(BillingProvider.values)}")
        return choice
    if currency == "INR" and razorpay_configured():
        return BillingProvider.RAZORPAY
    if stripe_configured():
        return BillingProvider.STRIPE
    return BillingProvider.OFFLINE


def provider_named(name: str):
    from .offline import OfflineProvider
    from .razorpay import RazorpayProvider
    from .stripe import StripeProvider

    return {
        BillingProvider.OFFLINE: OfflineProvider,
        BillingProvider.RAZORPAY: RazorpayProvider,
        BillingProvider.STRIPE: StripeProvider,
    }[name]()


def provider_for(organization):
    from ..models import Subscription

    subscription = Subscription.objects.unscoped().filter(organization=organization).first()
    if subscription and subscription.provider_subscription_id:
        return provider_named(subscription.provider)
    currency = subscription.currency if subscription else organization.currency
    return provider_named(provider_name_for_currency(currency))
