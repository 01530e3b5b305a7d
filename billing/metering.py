"""Metered usage → invoice lines, monthly.

Usage lives in other apps (deliveries counted by campaigns and messaging). Each registers a source:
``register_usage_source(source)`` where ``source(organization, period_start, period_end)`` returns
``[(description, quantity, unit_amount), …]`` — amounts before tax, in the organization's currency. On the 1st of
each month (beat) every organization's sources are asked about the month before, and what they report becomes
one invoice, with tax; a period is invoiced once (``UsageInvoiceRun``), so a repeated run changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization

from .invoices import LineSpec, invoice_create
from .models import Invoice, InvoiceLineKind, UsageInvoiceRun

logger = logging.getLogger(__name__)

UsageLine = tuple[str, Decimal, Decimal]
UsageSource = Callable[[Organization, datetime, datetime], Iterable[UsageLine]]

_sources: list[UsageSource] = []


def register_usage_source(source: UsageSource) -> UsageSource:
    """Add a source (usable as a decorator); registering the same one twice keeps one."""
    if source not in _sources:
        _sources.append(source)
    return source


def unregister_usage_source(source: UsageSource) -> None:
    if source in _sources:
        _sources.remove(source)


def usage_lines(*, organization, period_start: datetime, period_end: datetime) -> list[LineSpec]:
    lines = []
    for source in list(_sources):
        for description, quantity, unit_amount in source(organization, period_start, period_end):
            quantity, unit_amount = Decimal(str(quantity)), Decimal(str(unit_amount))
            if quantity > 0 and unit_amount >= 0:
                lines.append(LineSpec(str(description), quantity, unit_amount, kind=InvoiceLineKind.USAGE))
    return lines


def usage_invoice(*, organization, period_start: datetime, period_end: datetime) -> Invoice | None:
    """Invoice ``organization``'s usage in [period_start, period_end) once; None when there was none (or it was
    already invoiced)."""
    try:
        with transaction.atomic():
            run = UsageInvoiceRun.objects.unscoped().create(
                organization=organization, period_start=period_start, period_end=period_end
            )
            lines = usage_lines(organization=organization, period_start=period_start, period_end=period_end)
            if not lines:
                return None
            invoice = invoice_create(
                organization=organization,
                currency=organization.currency,
                lines=lines,
                period_start=period_start,
                period_end=period_end,
            )
            run.invoice = invoice
            run.save(update_fields=["invoice"])
            return invoice
    except IntegrityError:
        logger.info("usage of organization %s from %s was already invoiced", organization.pk, period_start)
        return None


def previous_month(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = (now or timezone.now()).astimezone(UTC)
    end = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end.replace(day=1) - timezone.timedelta(days=1)).replace(day=1)
    return start, end


def usage_invoice_previous_month(*, now: datetime | None = None) -> list[Invoice]:
    if not _sources:
        return []
    start, end = previous_month(now)
    invoices = []
    for organization in Organization.objects.filter(is_active=True).order_by("pk"):
        invoice = usage_invoice(organization=organization, period_start=start, period_end=end)
        if invoice is not None:
            invoices.append(invoice)
    return invoices
