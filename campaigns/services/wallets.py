"""Buyer wallets: an immutable ledger and a balance row that always equals its sum.

Every change locks the wallet row (``SELECT … FOR UPDATE``), writes one ``WalletEntry`` with the balance after it
and updates the balance, in one transaction. A debit never takes the balance below ``-buyer.credit_limit``.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from accounts.services import audit_record
from leadflow.exceptions import ServiceError

from ..constants import WalletEntryKind
from ..models import ZERO, Buyer, Wallet, WalletEntry

CENT = Decimal("0.01")


class InsufficientFunds(ServiceError):
    default_code = "insufficient_funds"


def _amount(value) -> Decimal:
    amount = Decimal(str(value)).quantize(CENT)
    if amount <= ZERO:
        raise ServiceError("The amount must be more than zero.", field="amount")
    return amount


def wallets_ensure(*, buyer_ids: list[int], organization_id: int) -> None:
    """Create the missing wallet rows (zero balance) without racing a concurrent creator."""
    Wallet.objects.unscoped().bulk_create(
        [Wallet(buyer_id=buyer_id, organization_id=organization_id) for buyer_id in sorted(set(buyer_ids))],
        ignore_conflicts=True,
    )


def wallets_lock(*, buyer_ids: list[int], organization_id: int) -> dict[int, Wallet]:
    """The buyers' wallets, locked. Always in buyer id order, so two transactions locking overlapping sets of
    wallets queue instead of deadlocking. Must run inside a transaction."""
    if not buyer_ids:
        return {}
    locked = (
        Wallet.objects.unscoped()
        .select_for_update()
        .filter(organization_id=organization_id, buyer_id__in=buyer_ids)
        .order_by("buyer_id")
    )
    wallets = {wallet.buyer_id: wallet for wallet in locked}
    if len(wallets) < len(set(buyer_ids)):
        # Rare (buyers get a wallet when created): make the missing ones, then lock the whole set again in order.
        wallets_ensure(buyer_ids=buyer_ids, organization_id=organization_id)
        wallets = {wallet.buyer_id: wallet for wallet in locked.all()}
    return wallets


def wallet_post(
    *,
    wallet: Wallet,
    kind: str,
    amount: Decimal,
    credit_limit: Decimal,
    lead=None,
    note: str = "",
    actor=None,
    external_reference: str = "",
) -> WalletEntry:
    """Write one ledger entry on a wallet the caller has locked. ``amount`` is signed; refuses to go below the
    credit limit when money leaves the wallet."""
    balance_after = wallet.balance + amount
    if amount < ZERO and balance_after < -credit_limit:
        raise InsufficientFunds(
            f"The wallet holds {wallet.balance} (credit limit {credit_limit}); it cannot pay {-amount}.",
            field="amount",
        )
    entry = WalletEntry.objects.unscoped().create(
        organization_id=wallet.organization_id,
        buyer_id=wallet.buyer_id,
        kind=kind,
        amount=amount,
        balance_after=balance_after,
        lead=lead,
        note=note[:255],
        external_reference=external_reference,
        actor=actor,
    )
    wallet.balance = balance_after
    wallet.save(update_fields=["balance", "updated_at"])
    return entry


def _locked_wallet(buyer: Buyer) -> Wallet:
    return wallets_lock(buyer_ids=[buyer.pk], organization_id=buyer.organization_id)[buyer.pk]


@transaction.atomic
def wallet_credit(
    *, buyer: Buyer, amount, note: str = "", actor=None, request=None, external_reference: str = ""
) -> WalletEntry:
    """Money in: a top-up by hand, or a payment confirmed by a provider (``billing.charging``).

    ``external_reference`` names the payment (e.g. ``razorpay:pay_…``); crediting the same one again returns the
    entry it made the first time, so a re-delivered provider webhook changes nothing.
    """
    amount = _amount(amount)
    wallet = _locked_wallet(buyer)  # taken first: two deliveries of one payment queue here, the second sees the first
    if external_reference:
        existing = WalletEntry.objects.unscoped().filter(
            organization_id=buyer.organization_id, external_reference=external_reference
        )
        if entry := existing.first():
            return entry
    entry = wallet_post(
        wallet=wallet,
        kind=WalletEntryKind.CREDIT,
        amount=amount,
        credit_limit=buyer.credit_limit,
        note=note,
        actor=actor,
        external_reference=external_reference[:255],
    )
    _audit(buyer, "wallet.credited", entry, actor=actor, request=request)
    return entry


@transaction.atomic
def wallet_debit(*, buyer: Buyer, amount, lead=None, note: str = "", actor=None) -> WalletEntry:
    """Money out. Sales debit through ``lead_distribute``, which already holds the lock; this is for the rest."""
    return wallet_post(
        wallet=_locked_wallet(buyer),
        kind=WalletEntryKind.DEBIT,
        amount=-_amount(amount),
        credit_limit=buyer.credit_limit,
        lead=lead,
        note=note,
        actor=actor,
    )


@transaction.atomic
def wallet_refund(*, buyer: Buyer, amount, lead=None, note: str = "", actor=None, request=None) -> WalletEntry:
    """Money back for a lead (an approved return)."""
    entry = wallet_post(
        wallet=_locked_wallet(buyer),
        kind=WalletEntryKind.REFUND,
        amount=_amount(amount),
        credit_limit=buyer.credit_limit,
        lead=lead,
        note=note,
        actor=actor,
    )
    _audit(buyer, "wallet.refunded", entry, actor=actor, request=request)
    return entry


@transaction.atomic
def wallet_adjust(*, buyer: Buyer, amount, note: str, actor=None, request=None) -> WalletEntry:
    """A correction by hand, either way; it needs a note, and it cannot take the wallet past the credit limit."""
    amount = Decimal(str(amount)).quantize(CENT)
    if amount == ZERO:
        raise ServiceError("An adjustment cannot be zero.", field="amount")
    if not note.strip():
        raise ServiceError("Say why the wallet is adjusted.", field="note")
    entry = wallet_post(
        wallet=_locked_wallet(buyer),
        kind=WalletEntryKind.ADJUSTMENT,
        amount=amount,
        credit_limit=buyer.credit_limit,
        note=note,
        actor=actor,
    )
    _audit(buyer, "wallet.adjusted", entry, actor=actor, request=request)
    return entry


def _audit(buyer: Buyer, action: str, entry: WalletEntry, *, actor, request) -> None:
    audit_record(
        organization=buyer.organization,
        action=action,
        actor=actor,
        target=buyer,
        changes={"amount": str(entry.amount), "balance_after": str(entry.balance_after), "note": entry.note},
        request=request,
    )
