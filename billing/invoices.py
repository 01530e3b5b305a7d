"""Invoices: numbered per organization without gaps, taxed by the organization's country, rendered as PDF.

Two ways in: a provider's confirmed payment (tax-inclusive, mirrored once per provider reference) and the monthly
metered-usage run (lines before tax, tax added on top). Either way ``total = subtotal + tax_total`` in whole
minor units of the currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from .models import BillingProvider, Invoice, InvoiceCounter, InvoiceLine, InvoiceLineKind, InvoiceStatus
from .money import ZERO, TaxTreatment, quantize, tax_for


@dataclass(frozen=True)
class LineSpec:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    kind: str = InvoiceLineKind.SUBSCRIPTION


def _next_number(organization) -> int:
    """Lock the organization's counter and take the next number; the lock is held until the caller commits, so
    concurrent invoices queue and a rolled-back one gives its number back."""
    InvoiceCounter.objects.unscoped().bulk_create([InvoiceCounter(organization=organization)], ignore_conflicts=True)
    counter = InvoiceCounter.objects.unscoped().select_for_update().get(organization=organization)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def invoice_number(organization, sequence: int) -> str:
    return f"{organization.slug[:12].upper()}-{sequence:05d}"


@transaction.atomic
def invoice_create(
    *,
    organization,
    currency: str,
    lines: list[LineSpec],
    provider: str = BillingProvider.OFFLINE,
    provider_reference: str = "",
    gross_total: Decimal | None = None,
    paid_at=None,
    period_start=None,
    period_end=None,
    tax: TaxTreatment | None = None,
) -> Invoice:
    """An invoice of ``lines`` (amounts before tax) with the organization's tax on top — or, with
    ``gross_total`` (what a provider charged, tax included), one whose tax is taken out of that total.

    Idempotent on (provider, provider_reference): the same payment mirrored twice is invoiced once.
    """
    if provider_reference:
        existing = Invoice.objects.unscoped().filter(provider=provider, provider_reference=provider_reference)
        if invoice := existing.first():
            return invoice
    if not lines:
        raise ValueError("an invoice needs at least one line")
    tax = tax or tax_for(organization)
    amounts = [quantize(line.quantity * line.unit_amount, currency) for line in lines]
    if gross_total is not None:
        subtotal, tax_total = tax.split_gross(gross_total, currency)
        # The provider charged a tax-inclusive total: the lines carry the net, any rounding on the last line.
        amounts[-1] += subtotal - sum(amounts, ZERO)
    else:
        subtotal = sum(amounts, ZERO)
        tax_total = tax.tax_on(subtotal, currency)
    sequence = _next_number(organization)
    invoice = Invoice.objects.unscoped().create(
        organization=organization,
        sequence=sequence,
        number=invoice_number(organization, sequence),
        status=InvoiceStatus.PAID if paid_at else InvoiceStatus.OPEN,
        currency=currency,
        subtotal=subtotal,
        tax_total=tax_total,
        total=subtotal + tax_total,
        tax_kind=tax.kind,
        tax_rate=tax.rate,
        tax_note=tax.note,
        sac_code=tax.sac_code,
        supplier_tax_id=tax.supplier_tax_id,
        customer_name=organization.name,
        customer_address=organization.address,
        customer_country=str(organization.country),
        customer_tax_id=organization.tax_id,
        period_start=period_start,
        period_end=period_end,
        provider=provider,
        provider_reference=provider_reference,
        paid_at=paid_at,
    )
    InvoiceLine.objects.unscoped().bulk_create(
        [
            InvoiceLine(
                organization=organization,
                invoice=invoice,
                kind=line.kind,
                description=line.description[:255],
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=amount,
                position=position,
            )
            for position, (line, amount) in enumerate(zip(lines, amounts, strict=True))
        ]
    )
    if paid_at:
        transaction.on_commit(lambda: _queue_invoice_email(invoice.pk))
    return invoice


def _queue_invoice_email(invoice_id: int) -> None:
    from .tasks import send_invoice_email

    send_invoice_email.delay(invoice_id)


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF (WeasyPrint; needs Pango, see scripts/ensure_system_libs.sh)."""
    from weasyprint import HTML

    html = render_to_string(
        "billing/invoice_pdf.html",
        {
            "invoice": invoice,
            "lines": list(InvoiceLine.objects.unscoped().filter(invoice=invoice)),
            "supplier": {
                "name": settings.BILLING_SUPPLIER_NAME,
                "address": settings.BILLING_SUPPLIER_ADDRESS,
            },
        },
    )
    return HTML(string=html, base_url=settings.SITE_URL).write_pdf()


def invoice_email_send(*, invoice: Invoice) -> int:
    """The paid invoice, PDF attached, to the organization's owners; once (``emailed_at``)."""
    from django.core.mail import EmailMultiAlternatives

    from .notifications import owners_of

    if invoice.emailed_at:
        return 0
    organization = invoice.organization
    context = {"invoice": invoice, "organization": organization, "site_url": settings.SITE_URL}
    text = render_to_string("billing/email/invoice_paid.txt", context)
    html = render_to_string("billing/email/invoice_paid.html", context)
    pdf = invoice_pdf(invoice)
    sent = 0
    for owner in owners_of(organization):
        message = EmailMultiAlternatives(
            subject=f"Invoice {invoice.number} from {settings.BILLING_SUPPLIER_NAME}: paid", body=text, to=[owner.email]
        )
        message.attach_alternative(html, "text/html")
        message.attach(f"{invoice.number}.pdf", pdf, "application/pdf")
        message.send()
        sent += 1
    Invoice.objects.unscoped().filter(pk=invoice.pk).update(emailed_at=timezone.now())
    return sent
