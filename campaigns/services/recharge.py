"""Auto-recharge: a wallet that falls below the buyer's threshold is topped up from its saved payment method.

The trigger is the debit that crossed the threshold (``wallets.wallet_thresholds_watch``); the entry's id makes the
idempotency key, so a retried task charges once (the ``AutoRecharge`` row is unique on it, and ``billing.charging``
passes the key to the provider, which charges once per key). The charge runs outside the wallet lock: the provider
credits the wallet when the payment is confirmed (the offline provider at once), through ``wallet_credit``.

A failure is recorded and the buyer and the admins are emailed; after ``AUTO_RECHARGE_MAX_FAILURES`` in a row,
auto-recharge turns itself off rather than retry a card that keeps failing.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import audit_record
from billing.charging import ChargeResult, ChargeStatus, wallet_recharge_charge

from ..constants import AUTO_RECHARGE_MAX_FAILURES, RechargeStatus
from ..models import AutoRecharge, Buyer
from .wallets import wallets_lock

logger = logging.getLogger(__name__)


def wallet_auto_recharge(*, buyer_id: int, idempotency_key: str) -> AutoRecharge | None:
    """Charge the buyer's auto-recharge amount once for ``idempotency_key``; ``None`` when nothing was needed."""
    buyer = Buyer.objects.unscoped().select_related("organization").filter(pk=buyer_id).first()
    if buyer is None:
        return None
    with transaction.atomic():
        wallet = wallets_lock(buyer_ids=[buyer.pk], organization_id=buyer.organization_id)[buyer.pk]
        recharge = AutoRecharge.objects.unscoped().filter(idempotency_key=idempotency_key).first()
        if recharge is not None and recharge.finished_at is not None:
            return recharge  # already charged (or refused) for this crossing
        if recharge is None:
            buyer.refresh_from_db()
            threshold = buyer.auto_recharge_threshold
            if not buyer.auto_recharge_enabled or threshold is None or wallet.balance >= threshold:
                return None  # turned off, or topped up since the crossing
            recharge = AutoRecharge.objects.unscoped().create(
                organization_id=buyer.organization_id,
                buyer=buyer,
                idempotency_key=idempotency_key,
                amount=buyer.auto_recharge_amount,
                balance_before=wallet.balance,
            )
    # An interrupted earlier run left the row unfinished: asking the provider again with the same key is safe.
    try:
        result = wallet_recharge_charge(
            buyer=buyer,
            amount=recharge.amount,
            idempotency_key=idempotency_key,
            description=f"Auto-recharge of {recharge.amount} (balance fell below {buyer.auto_recharge_threshold})",
        )
    except Exception as error:  # a provider outage or bug is a failed recharge, reported like a declined card
        logger.exception("auto-recharge %s for buyer %s failed", idempotency_key, buyer.pk)
        result = ChargeResult(ChargeStatus.FAILED, "unknown", error=f"{type(error).__name__}: {error}"[:500])
    return _recharge_finish(recharge, buyer, result)


@transaction.atomic
def _recharge_finish(recharge: AutoRecharge, buyer: Buyer, result: ChargeResult) -> AutoRecharge:
    recharge.status = {
        ChargeStatus.SUCCEEDED: RechargeStatus.SUCCEEDED,
        ChargeStatus.PENDING: RechargeStatus.PENDING,
    }.get(result.status, RechargeStatus.FAILED)
    recharge.provider, recharge.reference, recharge.error = result.provider, result.reference[:255], result.error[:500]
    recharge.finished_at = timezone.now()
    recharge.save(update_fields=["status", "provider", "reference", "error", "finished_at"])
    buyers = Buyer.objects.unscoped().filter(pk=buyer.pk)
    if recharge.status == RechargeStatus.FAILED:
        buyers.update(auto_recharge_failures=F("auto_recharge_failures") + 1)
        failures = buyers.values_list("auto_recharge_failures", flat=True).get()
        if failures >= AUTO_RECHARGE_MAX_FAILURES:
            buyers.update(auto_recharge_enabled=False)
        audit_record(
            organization=buyer.organization,
            action="wallet.auto_recharge_failed",
            target=buyer,
            changes={"amount": str(recharge.amount), "error": recharge.error, "failures_in_a_row": failures},
        )
        from ..tasks import notify_auto_recharge_failed

        transaction.on_commit(lambda: notify_auto_recharge_failed.delay(recharge.pk))
    else:
        buyers.update(auto_recharge_failures=0)
        audit_record(
            organization=buyer.organization,
            action="wallet.auto_recharged",
            target=buyer,
            changes={"amount": str(recharge.amount), "status": recharge.status, "reference": recharge.reference},
        )
    return recharge
