"""Buyer wallets: an immutable ledger and a balance row that always equals its sum.

Every change locks the wallet row (``SELECT … FOR UPDATE``), writes one ``WalletEntry`` with the balance after it
and updates the balance, in one transaction. A debit never takes the balance below ``-buyer.credit_limit``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

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
        .only("id", "organization_id", "buyer_id", "balance", "low_balance_alerted")
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
    buyer: Buyer | None = None,
    created_at: datetime | None = None,
) -> WalletEntry:
    """Write one ledger entry on a wallet the caller has locked. ``amount`` is signed; refuses to go below the
    credit limit when money leaves the wallet.

    With ``buyer`` (its alert and auto-recharge settings loaded), a balance that crosses the buyer's thresholds
    queues the low-balance alert or the auto-recharge, after commit; ``created_at`` lets the distribution date its
    debits with the clock it counted caps and spending limits by.
    """
    balance_before = wallet.balance
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
        created_at=created_at or timezone.now(),
    )
    wallet.balance = balance_after
    changed = ["balance", "updated_at"]
    if buyer is not None:
        changed += wallet_thresholds_watch(wallet=wallet, buyer=buyer, before=balance_before, entry=entry)
    wallet.save(update_fields=changed)
    return entry


def threshold_effects(*, alerted: bool, buyer: Buyer, before: Decimal, after: Decimal) -> tuple[bool, bool, bool]:
    """What a balance change from ``before`` to ``after`` does: ``(low_balance_alerted, send the low-balance alert,
    queue an auto-recharge)``.

    Falling below the low-balance threshold alerts once, until the balance is back above it; money leaving the
    wallet and taking it below the auto-recharge threshold recharges.
    """
    threshold = buyer.low_balance_threshold
    alert = threshold is not None and after < threshold and not alerted
    if alert:
        alerted = True
    elif alerted and (threshold is None or after >= threshold):
        alerted = False
    below = buyer.auto_recharge_threshold
    recharge = bool(buyer.auto_recharge_enabled and below is not None and after < before and before >= below > after)
    return alerted, alert, recharge


def threshold_effects_on_commit(*, buyer: Buyer, alert: bool, recharge: bool, entry_id: int) -> None:
    """Queue the alert and the recharge after commit; the entry that crossed names the recharge (its idempotency
    key), so the same crossing never charges twice."""
    from ..tasks import notify_low_balance, recharge_wallet

    if alert:
        transaction.on_commit(lambda: task_queue_or_log(notify_low_balance, buyer.pk))
    if recharge:
        key = f"auto-recharge:{buyer.pk}:{entry_id}"
        transaction.on_commit(lambda: task_queue_or_log(recharge_wallet, buyer.pk, key))


def wallet_thresholds_watch(*, wallet: Wallet, buyer: Buyer, before: Decimal, entry: WalletEntry) -> list[str]:
    """React to the balance crossing the buyer's thresholds (the wallet is locked, so each crossing is seen once).
    Returns the wallet fields it changed."""
    alerted, alert, recharge = threshold_effects(
        alerted=wallet.low_balance_alerted, buyer=buyer, before=before, after=wallet.balance
    )
    changed = ["low_balance_alerted"] if alerted != wallet.low_balance_alerted else []
    wallet.low_balance_alerted = alerted
    threshold_effects_on_commit(buyer=buyer, alert=alert, recharge=recharge, entry_id=entry.pk)
    return changed


def task_queue_or_log(task, *args) -> None:
    """Queue a task from an after-commit callback. A broker outage must not fail a sale that already committed: the
    alert or recharge is then lost and logged (the next crossing queues again)."""
    import logging

    try:
        task.delay(*args)
    except Exception:
        logging.getLogger(__name__).warning("could not queue %s%s", task.name, args, exc_info=True)


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
        buyer=buyer,
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
        buyer=buyer,
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
        buyer=buyer,
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
        buyer=buyer,
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
