"""Emails of the campaigns app: low balances and failed auto-recharges, to the seller's admins and the buyer."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.urls import NoReverseMatch, reverse

from accounts.constants import Role
from accounts.models import Membership

from .models import AutoRecharge, Buyer, Wallet


def _admin_emails(organization_id: int) -> list[str]:
    return list(
        Membership.objects.unscoped()
        .filter(organization_id=organization_id, role__in=[Role.OWNER, Role.ADMIN], user__is_active=True)
        .values_list("user__email", flat=True)
    )


def _link(name: str, *args) -> str:
    try:
        return settings.SITE_URL + reverse(name, args=args)
    except NoReverseMatch:
        return settings.SITE_URL


def _recipients(buyer: Buyer) -> list[str]:
    emails = _admin_emails(buyer.organization_id)
    if buyer.email and buyer.email.lower() not in {e.lower() for e in emails}:
        emails.append(buyer.email)
    return emails


def low_balance_email_send(*, buyer_id: int) -> int:
    """Tell the admins and the buyer its wallet fell below the threshold; skipped if it was topped up meanwhile."""
    buyer = Buyer.objects.unscoped().select_related("organization").filter(pk=buyer_id).first()
    wallet = Wallet.objects.unscoped().filter(buyer_id=buyer_id).first()
    if buyer is None or wallet is None or not wallet.low_balance_alerted or buyer.low_balance_threshold is None:
        return 0
    from messaging.services.notifications import low_wallet_notify

    currency = buyer.organization.currency
    subject = f"Low balance: {buyer.name} has {wallet.balance} {currency} left"
    # The admins are told as they prefer (the bell, SMS, WhatsApp; email unless they turned it off).
    recipients = low_wallet_notify(buyer=buyer, title=subject, url=_link("campaigns:buyer_detail", buyer.pk))
    if buyer.email and buyer.email.lower() not in {e.lower() for e in recipients}:
        recipients.append(buyer.email)
    if not recipients:
        return 0
    send_mail(
        subject=subject,
        message=(
            f"The lead wallet of {buyer.name} ({buyer.organization.name}) is down to {wallet.balance} {currency}, "
            f"below its alert threshold of {buyer.low_balance_threshold} {currency}.\n\n"
            "When it cannot pay for a lead, the buyer stops receiving leads until it is topped up.\n\n"
            f"Wallet: {_link('campaigns:buyer_detail', buyer.pk)}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)


def auto_recharge_failed_email_send(*, recharge_id: int) -> int:
    recharge = AutoRecharge.objects.unscoped().select_related("buyer__organization").filter(pk=recharge_id).first()
    if recharge is None:
        return 0
    buyer = recharge.buyer
    recipients = _recipients(buyer)
    if not recipients:
        return 0
    currency = buyer.organization.currency
    stopped = "" if buyer.auto_recharge_enabled else "\nAuto-recharge is now off after repeated failures.\n"
    send_mail(
        subject=f"Auto-recharge failed for {buyer.name}",
        message=(
            f"LeadFlow tried to top up the lead wallet of {buyer.name} by {recharge.amount} {currency} and the "
            f"payment did not go through: {recharge.error or 'no reason given'}.\n{stopped}\n"
            f"The balance is {buyer.wallet.balance} {currency}. Update the payment method or top up by hand:\n"
            f"{_link('campaigns:buyer_detail', buyer.pk)}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
