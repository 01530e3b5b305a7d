"""Usage metering: one ``UsageRecord`` per SMS, WhatsApp message, email or webhook sent for an organization.

``usage_record`` is called in the transaction that records the send as done, keyed by what was sent, so a send
is metered once however often its task runs. The billable amount is the provider cost plus the organization's
markup (``UsagePricing``, or ``USAGE_DEFAULT_MARKUP_PERCENT``), rounded to four places.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from leadflow.exceptions import ServiceError

from ..models import UsagePricing, UsageRecord

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
