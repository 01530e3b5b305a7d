"""The offline provider: development, tests and demos. Its checkout is a LeadFlow page whose "Pay" button
confirms the payment through the same event path a provider's verified webhook takes (``billing.events``)."""

from __future__ import annotations

import secrets

from django.urls import reverse

from ..charging import OfflineChargeProvider
from ..models import BillingProvider
from . import CheckoutStart


class OfflineProvider(OfflineChargeProvider):
    name = BillingProvider.OFFLINE

    def plan_checkout(self, *, checkout, success_url: str, cancel_url: str) -> CheckoutStart:
        return CheckoutStart(self.name, checkout.token, url=reverse("billing:offline_checkout", args=[checkout.token]))

    def subscription_change_plan(self, *, subscription, price, upgrade: bool) -> bool:
        """Nothing to tell anyone: the change applies at once. Returns whether it already applied."""
        return True

    def subscription_cancel_at_period_end(self, *, subscription) -> None:
        return None

    def portal_url(self, *, subscription, return_url: str) -> str | None:
        return None

    def top_up_checkout(self, *, top_up, success_url: str, cancel_url: str) -> CheckoutStart:
        reference = f"offline_{secrets.token_urlsafe(16)}"
        return CheckoutStart(self.name, reference, url=reverse("billing:offline_top_up", args=[reference]))
