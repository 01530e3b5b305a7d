"""Invoices: tax (GST split by state, IGST, VAT reverse charge), tax-inclusive payments split exactly in minor
units, numbering per organization without gaps under concurrency, the PDF, and metered usage lines."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pypdf import PdfReader

from billing import tasks
from billing.invoices import LineSpec, invoice_create, invoice_pdf
from billing.metering import register_usage_source, unregister_usage_source
from billing.models import Invoice, InvoiceCounter, InvoiceLine
from billing.money import TaxTreatment, from_minor, tax_for, to_minor
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

LINES = [
    LineSpec("Growth plan, monthly", Decimal("1"), Decimal("2999.00")),
    LineSpec("SMS alerts", Decimal("1250"), Decimal("0.1825"), kind="usage"),
]


def test_gst_within_one_state_is_cgst_plus_sgst(settings):
    settings.BILLING_SUPPLIER_GSTIN = "27AABCL1234F1Z5"
    organization = OrganizationFactory(country="IN", tax_id="27AAPFU0939F1ZV")
    invoice = invoice_create(organization=organization, currency="INR", lines=LINES)
    # 2,999.00 + 1,250 x 0.1825 (228.125 → 228.13) = 3,227.13; GST 18 % = 580.8834 → 580.88.
    assert [line.amount for line in InvoiceLine.objects.unscoped().filter(invoice=invoice)] == [
        Decimal("2999.00"),
        Decimal("228.13"),
    ]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("3227.13"),
        Decimal("580.88"),
        Decimal("3808.01"),
    )
    assert (invoice.tax_kind, invoice.tax_rate, invoice.sac_code) == ("gst", Decimal("18"), "998314")
    assert invoice.tax_split == [("CGST", Decimal("9"), Decimal("290.44")), ("SGST", Decimal("9"), Decimal("290.44"))]


def test_gst_across_states_is_igst(settings):
    settings.BILLING_SUPPLIER_GSTIN = "29AABCL1234F1Z5"  # Karnataka
    organization = OrganizationFactory(country="IN", tax_id="27AAPFU0939F1ZV")  # Maharashtra
    invoice = invoice_create(organization=organization, currency="INR", lines=LINES[:1])
    assert invoice.tax_split == [("IGST", Decimal("18"), Decimal("539.82"))]
    assert invoice.total == Decimal("3538.82")


def test_vat_reverse_charge_with_a_vat_id_and_vat_without(settings):
    settings.BILLING_VAT_RATE = "20"
    settings.BILLING_SUPPLIER_VAT_ID = "IE6388047V"
    with_id = OrganizationFactory(country="DE", currency="EUR", tax_id="DE129273398")
    invoice = invoice_create(
        organization=with_id, currency="EUR", lines=[LineSpec("Growth", Decimal("1"), Decimal("49"))]
    )
    assert (invoice.tax_kind, invoice.tax_rate, invoice.tax_total, invoice.total) == ("vat", 0, 0, Decimal("49.00"))
    assert "Reverse charge" in invoice.tax_note and invoice.customer_tax_id == "DE129273398"
    without = OrganizationFactory(country="GB", currency="GBP", tax_id="")
    invoice = invoice_create(
        organization=without, currency="GBP", lines=[LineSpec("Growth", Decimal("1"), Decimal("49"))]
    )
    assert (invoice.tax_kind, invoice.tax_total, invoice.total) == ("vat", Decimal("9.80"), Decimal("58.80"))
    assert invoice.tax_split == [("VAT", Decimal("20"), Decimal("9.80"))]


@hypothesis_settings(max_examples=200, deadline=None)
@given(net_minor=st.integers(min_value=0, max_value=10**11), rate=st.sampled_from(["0", "5", "12", "18", "20", "28"]))
def test_a_tax_inclusive_total_splits_back_to_its_net_exactly(net_minor, rate):
    tax = TaxTreatment(kind="gst", rate=Decimal(rate))
    net = from_minor(net_minor, "INR")
    gross = tax.gross(net, "INR")
    assert tax.split_gross(gross, "INR") == (net, gross - net)
    assert to_minor(gross, "INR") == net_minor + to_minor(tax.tax_on(net, "INR"), "INR")


def test_minor_units_refuse_fractions_of_a_paisa():
    assert to_minor(Decimal("3538.82"), "INR") == 353882 and from_minor(353882, "INR") == Decimal("3538.82")
    with pytest.raises(ValueError):
        to_minor(Decimal("1.005"), "INR")


def test_numbers_are_per_organization_and_a_rolled_back_invoice_leaves_no_gap():
    first, second = OrganizationFactory(slug="sunrise"), OrganizationFactory(slug="bright")
    a1 = invoice_create(organization=first, currency="INR", lines=LINES[:1])
    b1 = invoice_create(organization=second, currency="INR", lines=LINES[:1])
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_create(organization=first, currency="INR", lines=LINES[:1])
        raise RuntimeError("the payment that caused it was rolled back")
    a2 = invoice_create(organization=first, currency="INR", lines=LINES[:1])
    assert (a1.number, a2.number, b1.number) == ("SUNRISE-00001", "SUNRISE-00002", "BRIGHT-00001")
    # The same provider payment is invoiced once.
    again = invoice_create(
        organization=first, currency="INR", lines=LINES[:1], provider="razorpay", provider_reference="pay_1"
    )
    assert (
        invoice_create(
            organization=first, currency="INR", lines=LINES[:1], provider="razorpay", provider_reference="pay_1"
        ).pk
        == again.pk
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_invoices_get_consecutive_numbers():
    organization = OrganizationFactory(slug="busy")
    barrier = threading.Barrier(6)
    errors = []

    def create():
        try:
            barrier.wait(timeout=10)
            invoice_create(organization=organization, currency="INR", lines=LINES[:1])
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    sequences = sorted(Invoice.objects.unscoped().filter(organization=organization).values_list("sequence", flat=True))
    assert sequences == [1, 2, 3, 4, 5, 6]
    assert InvoiceCounter.objects.unscoped().get(organization=organization).last_number == 6


def test_the_pdf_renders_with_its_number_tax_and_lines(settings):
    settings.BILLING_SUPPLIER_GSTIN = "27AABCL1234F1Z5"
    settings.BILLING_SUPPLIER_NAME = "LeadFlow Technologies Pvt Ltd"
    organization = OrganizationFactory(name="Sunrise Homes", slug="sunrise", country="IN", tax_id="27AAPFU0939F1ZV")
    invoice = invoice_create(
        organization=organization, currency="INR", lines=LINES, paid_at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    pdf = invoice_pdf(invoice)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in (
        "Tax invoice SUNRISE-00001",
        "LeadFlow Technologies Pvt Ltd",
        "GSTIN: 27AAPFU0939F1ZV",
        "998314",
        "SMS alerts",
        "CGST @ 9%",
        "290.44",
        "3808.01 INR",
        "PAID",
    ):
        assert expected in text, f"{expected!r} not in the PDF's text:\n{text}"


def test_many_lines_flow_onto_more_pages():
    organization = OrganizationFactory(country="US", currency="USD")
    lines = [
        LineSpec(f"Webhook deliveries, campaign {n}", Decimal("10"), Decimal("0.01"), kind="usage") for n in range(90)
    ]
    reader = PdfReader(io.BytesIO(invoice_pdf(invoice_create(organization=organization, currency="USD", lines=lines))))
    assert len(reader.pages) >= 2
    assert "Page 1 of" in reader.pages[0].extract_text()


def test_metered_usage_becomes_invoice_lines_once_a_month(settings):
    settings.BILLING_SUPPLIER_GSTIN = "27AABCL1234F1Z5"
    organization = OrganizationFactory(country="IN", tax_id="27AAPFU0939F1ZV")
    quiet = OrganizationFactory(country="IN")
    asked = []

    def deliveries(org, start, end):
        asked.append((org.pk, start, end))
        if org.pk != organization.pk:
            return []
        return [
            ("SMS alerts", 1250, Decimal("0.18")),
            ("WhatsApp messages", 40, Decimal("0.75")),
            ("Nothing sent", 0, Decimal("1")),
        ]

    register_usage_source(deliveries)
    try:
        from freezegun import freeze_time

        with freeze_time("2026-04-01 01:00:00+00:00"):
            assert tasks.invoice_metered_usage() == 1
            assert tasks.invoice_metered_usage() == 0  # the month is invoiced once
    finally:
        unregister_usage_source(deliveries)
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert (organization.pk, *march) in asked and (quiet.pk, *march) in asked
    invoice = Invoice.objects.unscoped().get(organization=organization)
    lines = list(InvoiceLine.objects.unscoped().filter(invoice=invoice).values_list("description", "amount", "kind"))
    assert lines == [("SMS alerts", Decimal("225.00"), "usage"), ("WhatsApp messages", Decimal("30.00"), "usage")]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("255.00"),
        Decimal("45.90"),
        Decimal("300.90"),
    )
    assert (invoice.period_start, invoice.period_end) == march and invoice.status == "open"
    assert not Invoice.objects.unscoped().filter(organization=quiet).exists()
    assert tax_for(organization).kind == "gst"
