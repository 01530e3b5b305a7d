"""Buyer wallet top-ups: a checkout with the organization's provider (Razorpay order, Stripe Checkout in payment
mode, or the offline page), credited only when the provider's verified webhook says it is paid — through
``wallet_credit`` with the payment's reference, so a repeated confirmation credits once. A top-up can save the
payment method (Stripe ``setup_future_usage=off_session``, a Razorpay customer and recurring token) for
auto-recharge, which ``billing.charging`` charges off-session."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import audit_record
from leadflow.exceptions import ServiceError

from .charging import ChargeResult, ChargeStatus
from .models import BuyerPaymentMethod, TopUpKind, TopUpStatus, WalletTopUp
from .money import from_minor, quantize
from .providers import ProviderError, provider_for

logger = logging.getLogger(__name__)

MIN_TOP_UP = Decimal("1.00")


@transaction.atomic
def top_up_start(
    *, buyer, amount, save_method: bool = False, actor=None, success_url_for, cancel_url: str, request=None
) -> WalletTopUp:
    """Open a checkout for ``amount`` into ``buyer``'s wallet; the returned top-up has its ``checkout_url`` (or
    Razorpay ``checkout_options``). ``success_url_for(top_up)`` is where the payer comes back. Nothing is
    credited here."""
    organization = buyer.organization
    currency = organization.currency
    try:
        amount = quantize(amount, currency)
    except ArithmeticError:
        raise ServiceError("Enter an amount.", field="amount") from None
    if amount < MIN_TOP_UP:
        raise ServiceError(f"Top up at least {MIN_TOP_UP} {currency}.", field="amount")
    if save_method and not buyer.email:
        raise ServiceError("Saving the card for auto-recharge needs the buyer's email.", field="save_method")
    provider = provider_for(organization)
    top_up = WalletTopUp.objects.unscoped().create(
        organization=organization,
        buyer=buyer,
        amount=amount,
        currency=currency,
        provider=provider.name,
        save_method=save_method,
        created_by=actor,
    )
    try:
        start = provider.top_up_checkout(top_up=top_up, success_url=success_url_for(top_up), cancel_url=cancel_url)
    except ProviderError as error:
        raise ServiceError(error.message, field="amount") from error
    top_up.provider_reference = start.reference
    top_up.checkout_url = start.url
    top_up.checkout_options = start.options
    top_up.save(update_fields=["provider_reference", "checkout_url", "checkout_options"])
    audit_record(
        organization=organization,
        action="wallet.top_up_started",
        actor=actor,
        target=buyer,
        changes={"amount": str(amount), "provider": provider.name, "reference": start.reference},
        request=request,
    )
    return top_up


def _top_up_locked(*, provider: str, reference: str = "", top_up_id=None) -> WalletTopUp | None:
    queryset = WalletTopUp.objects.unscoped().select_for_update().select_related("buyer", "organization")
    if top_up_id:
        try:
            found = queryset.filter(pk=int(top_up_id), provider=provider).first()
        except (TypeError, ValueError):
            found = None
        if found:
            return found
    if reference:
        return queryset.filter(provider=provider, provider_reference=reference).first()
    return None


@transaction.atomic
def top_up_paid(
    *,
    provider: str,
    payment_reference: str,
    amount_minor: int,
    currency: str,
    reference: str = "",
    top_up_id=None,
    customer_id: str = "",
    method_id: str = "",
    method_label: str = "",
) -> WalletTopUp | None:
    """A provider confirmed a top-up's payment: credit the wallet once, keep the method when asked to."""
    from campaigns.services.wallets import wallet_credit

    top_up = _top_up_locked(provider=provider, reference=reference, top_up_id=top_up_id)
    if top_up is None:
        logger.warning(
            "%s payment %s names no top-up we know (%s, %s)", provider, payment_reference, reference, top_up_id
        )
        return None
    paid = from_minor(amount_minor, currency)
    if currency.upper() != top_up.currency:
        logger.error("top-up %s paid in %s, expected %s: not credited", top_up.pk, currency, top_up.currency)
        top_up.error = f"Paid in {currency.upper()}, expected {top_up.currency}; not credited."
        top_up.save(update_fields=["error"])
        return top_up
    entry = wallet_credit(
        buyer=top_up.buyer,
        amount=paid,
        note=f"{top_up.get_kind_display()} via {top_up.get_provider_display()} ({payment_reference})",
        external_reference=f"{provider}:{payment_reference}",
    )
    if top_up.status != TopUpStatus.PAID:
        top_up.status = TopUpStatus.PAID
        top_up.payment_reference = payment_reference
        top_up.paid_at = timezone.now()
        top_up.error = "" if paid == top_up.amount else f"Paid {paid}, asked {top_up.amount}: credited what was paid."
        top_up.save(update_fields=["status", "payment_reference", "paid_at", "error"])
        logger.info("top-up %s paid: wallet entry %s", top_up.pk, entry.pk)
    if customer_id and method_id and (top_up.save_method or top_up.kind == TopUpKind.AUTO_RECHARGE):
        BuyerPaymentMethod.objects.unscoped().update_or_create(
            buyer=top_up.buyer,
            defaults={
                "organization": top_up.organization,
                "provider": provider,
                "customer_id": customer_id,
                "method_id": method_id,
                "label": method_label[:64],
            },
        )
    return top_up


@transaction.atomic
def top_up_failed(*, top_up_id: int, error: str) -> WalletTopUp | None:
    """The payment was refused. An auto-recharge failure alerts the owners (once per top-up)."""
    top_up = (
        WalletTopUp.objects.unscoped()
        .select_for_update()
        .select_related("buyer", "organization")
        .filter(pk=top_up_id)
        .first()
    )
    if top_up is None or top_up.status != TopUpStatus.PENDING:
        return top_up
    top_up.status = TopUpStatus.FAILED
    top_up.error = error[:255]
    top_up.save(update_fields=["status", "error"])
    audit_record(
        organization=top_up.organization,
        action="wallet.top_up_failed",
        target=top_up.buyer,
        changes={"amount": str(top_up.amount), "kind": top_up.kind, "error": top_up.error},
    )
    if top_up.kind == TopUpKind.AUTO_RECHARGE:
        transaction.on_commit(lambda: _queue_recharge_alert(top_up.pk))
    return top_up


def _queue_recharge_alert(top_up_id: int) -> None:
    from .tasks import send_recharge_failed_alert

    send_recharge_failed_alert.delay(top_up_id)


def top_up_for_recharge(
    *, buyer, amount: Decimal, idempotency_key: str, provider: str
) -> tuple[WalletTopUp, BuyerPaymentMethod | None, ChargeResult | None]:
    """The auto-recharge attempt named ``idempotency_key`` (created once) and the buyer's saved method. When the
    attempt already exists, the third item is its outcome, and nothing is charged again."""
    organization = buyer.organization
    try:
        with transaction.atomic():
            top_up = WalletTopUp.objects.unscoped().create(
                organization=organization,
                buyer=buyer,
                kind=TopUpKind.AUTO_RECHARGE,
                amount=quantize(amount, organization.currency),
                currency=organization.currency,
                provider=provider,
                idempotency_key=idempotency_key[:128],
            )
    except IntegrityError:
        top_up = WalletTopUp.objects.unscoped().get(organization=organization, idempotency_key=idempotency_key[:128])
        status = {
            TopUpStatus.PAID: ChargeStatus.SUCCEEDED,
            TopUpStatus.PENDING: ChargeStatus.PENDING,
            TopUpStatus.FAILED: ChargeStatus.FAILED,
        }[top_up.status]
        return top_up, None, ChargeResult(status, provider, reference=top_up.provider_reference, error=top_up.error)
    method = BuyerPaymentMethod.objects.unscoped().filter(buyer=buyer, provider=provider).first()
    return top_up, method, None
