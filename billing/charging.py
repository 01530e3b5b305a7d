"""Taking money without the payer present: the interface the rest of LeadFlow calls to charge a saved method.

Its caller is a buyer wallet's auto-recharge (``campaigns``). Providers: the offline one (development and tests),
Razorpay (a recurring payment on the token saved at a top-up) and Stripe (an off-session PaymentIntent on the saved
card), behind the same ``ChargeProvider`` shape, chosen per organization by ``charge_provider_for``.

A charge never credits the wallet from the request that asked for it when a real provider is involved: the wallet
is credited when the provider confirms the payment (its verified webhook), through ``wallet_credit`` with the
provider's payment id as ``external_reference`` so a repeated confirmation credits once. The offline provider
confirms at once, by the same path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

logger = logging.getLogger(__name__)


class ChargeStatus:
    SUCCEEDED = "succeeded"  # confirmed; the wallet has been credited
    PENDING = "pending"  # accepted by the provider; the wallet is credited when its webhook confirms
    FAILED = "failed"  # refused (no saved method, card declined …): ``error`` says why


@dataclass(frozen=True)
class ChargeResult:
    status: str
    provider: str
    reference: str = ""  # the provider's payment (or intent, or order) id
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status == ChargeStatus.FAILED


class ChargeProvider(Protocol):
    name: str

    def recharge_wallet(self, *, buyer, amount: Decimal, idempotency_key: str, description: str) -> ChargeResult:
        """Charge the buyer's saved payment method ``amount`` (in the organization's currency), off-session.

        ``idempotency_key`` is the caller's name for this attempt: asking twice with the same key charges once.
        """


class OfflineChargeProvider:
    """Development and tests: every charge succeeds at once and is logged, like Django's console email backend."""

    name = "offline"

    def recharge_wallet(self, *, buyer, amount: Decimal, idempotency_key: str, description: str) -> ChargeResult:
        from campaigns.services.wallets import wallet_credit

        reference = f"offline:{idempotency_key}"
        logger.info("offline charge %s %s for buyer %s: %s", amount, reference, buyer.pk, description)
        wallet_credit(buyer=buyer, amount=amount, note=description, external_reference=reference)
        return ChargeResult(ChargeStatus.SUCCEEDED, self.name, reference=reference)


def charge_provider_for(organization) -> ChargeProvider:
    """The provider that charges on ``organization``'s behalf: the one that bills it (``billing.providers``)."""
    from .providers import provider_for

    return provider_for(organization)


def wallet_recharge_charge(*, buyer, amount: Decimal, idempotency_key: str, description: str = "") -> ChargeResult:
    """Top up ``buyer``'s wallet by ``amount`` from its saved payment method."""
    provider = charge_provider_for(buyer.organization)
    return provider.recharge_wallet(
        buyer=buyer,
        amount=amount,
        idempotency_key=idempotency_key,
        description=description or f"Wallet auto-recharge of {amount}",
    )
