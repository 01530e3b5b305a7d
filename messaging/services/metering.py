"""Usage metering: one ``UsageRecord`` per SMS, WhatsApp message, email or webhook sent for an organization.

``usage_record`` is called in the transaction that records the send as done, keyed by what was sent, so a send
is metered once however often its task runs. The billable amount is the provider cost plus the organization's
markup (``UsagePricing``, or ``USAGE_DEFAULT_MARKUP_PERCENT``), rounded to four places.

``usage_invoice_lines`` is billing's usage source (``billing.metering.register_usage_source``, wired in
``MessagingConfig.ready``): the month's records become lines of the organization's usage invoice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from leadflow.exceptions import ServiceError

from ..constants import Channel
from ..models import UsagePricing, UsageRecord

logger = logging.getLogger(__name__)

FOUR_PLACES = Decimal("0.0001")
HUNDRED = Decimal("100")


def organization_markup_percent(organization_id: int) -> Decimal:
    markup = (
        UsagePricing.objects.unscoped()
        .filter(organization_id=organization_id)
        .values_list("markup_percent", flat=True)
        .first()
    )
    return markup if markup is not None else settings.USAGE_DEFAULT_MARKUP_PERCENT


def billable(cost: Decimal, markup_percent: Decimal) -> Decimal:
    return (cost * (HUNDRED + markup_percent) / HUNDRED).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


def usage_record(
    *,
    organization_id: int,
    channel: str,
    provider: str,
    source_key: str,
    cost: Decimal,
    currency: str,
    cost_is_estimate: bool = False,
    provider_message_id: str = "",
    quantity: int = 1,
    description: str = "",
    context: dict[str, Any] | None = None,
) -> UsageRecord:
    """Meter one send; the same ``source_key`` again returns the record made the first time."""
    existing = UsageRecord.objects.unscoped().filter(organization_id=organization_id, source_key=source_key).first()
    if existing is not None:
        return existing
    markup = organization_markup_percent(organization_id)
    cost = Decimal(cost).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)
    record = UsageRecord(
        organization_id=organization_id,
        channel=channel,
        provider=provider[:40],
        provider_message_id=provider_message_id[:120],
        quantity=quantity,
        provider_cost=cost,
        cost_is_estimate=cost_is_estimate,
        currency=currency.upper()[:3],
        markup_percent=markup,
        billable_amount=billable(cost, markup),
        source_key=source_key[:120],
        description=description[:255],
        context=context or {},
    )
    # A concurrent meter of the same send (a task that ran twice) loses the race to the unique constraint.
    UsageRecord.objects.unscoped().bulk_create([record], ignore_conflicts=True)
    return UsageRecord.objects.unscoped().get(organization_id=organization_id, source_key=record.source_key)


@transaction.atomic
def usage_markup_set(*, organization, markup_percent, actor=None, request=None) -> UsagePricing:
    """Change the organization's markup; records already made keep the markup they were billed with."""
    from accounts.services import audit_record

    markup = Decimal(str(markup_percent)).quantize(Decimal("0.01"))
    if markup < 0 or markup > 1000:
        raise ServiceError("The markup is a percentage from 0 to 1000.", field="markup_percent")
    pricing, _ = UsagePricing.objects.unscoped().get_or_create(
        organization=organization, defaults={"markup_percent": settings.USAGE_DEFAULT_MARKUP_PERCENT}
    )
    before = pricing.markup_percent
    if before != markup:
        pricing.markup_percent = markup
        pricing.save(update_fields=["markup_percent", "updated_at"])
        audit_record(
            organization=organization,
            action="usage_pricing.updated",
            actor=actor,
            target=pricing,
            changes={"markup_percent": [str(before), str(markup)]},
            request=request,
        )
    return pricing


# What each channel's sends are called on an invoice.
INVOICE_DESCRIPTIONS = {
    Channel.SMS: "SMS messages",
    Channel.WHATSAPP: "WhatsApp messages",
    Channel.EMAIL: "Emails",
    Channel.WEBHOOK: "Buyer webhook deliveries",
}


def exchange_rate(source: str, target: str) -> Decimal | None:
    """What one unit of ``source`` is worth in ``target`` (``USAGE_EXCHANGE_RATES``); 1 for the same currency."""
    source, target = source.upper(), target.upper()
    if source == target:
        return Decimal(1)
    return settings.USAGE_EXCHANGE_RATES.get((source, target))


def usage_invoice_lines(organization, period_start: datetime, period_end: datetime) -> list[tuple[str, int, Decimal]]:
    """Billing's usage source: the organization's metered sends in [period_start, period_end) as
    ``(description, quantity, unit amount)`` lines in the organization's currency.

    One line per channel and billed amount (each record is billed at the markup it was metered with, so a markup
    change or a provider's own price makes a second line rather than an average that would not add up). Amounts in
    another currency are converted by ``USAGE_EXCHANGE_RATES``; without a rate they are left out and logged. Sends
    that bill nothing make no line.
    """
    currency = organization.currency
    groups = (
        UsageRecord.objects.unscoped()
        .filter(
            organization=organization, created_at__gte=period_start, created_at__lt=period_end, billable_amount__gt=0
        )
        .values("channel", "currency", "billable_amount")
        .annotate(sends=Count("id"))
        .order_by("channel", "currency", "billable_amount")
    )
    lines = []
    for group in groups:
        rate = exchange_rate(group["currency"], currency)
        if rate is None:
            logger.error(
                "usage of organization %s left off its invoice: no USAGE_EXCHANGE_RATES entry %s:%s (%s × %s %s)",
                organization.pk,
                group["currency"],
                currency,
                group["sends"],
                group["currency"],
                group["billable_amount"],
            )
            continue
        description = INVOICE_DESCRIPTIONS.get(group["channel"], str(group["channel"]))
        unit = group["billable_amount"]
        if rate != 1:
            description = f"{description} ({group['currency']} {unit} each at {rate})"
            unit = (unit * rate).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)
        lines.append((description, group["sends"], unit))
    return lines
