"""Metered sends (messaging's ``UsageRecord``: SMS, WhatsApp, email, buyer webhooks) reach billing through its usage
registry: the monthly usage invoice and the billing page's "this month" table."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from freezegun import freeze_time

from billing import metering, tasks
from billing.models import Invoice, InvoiceLine
from messaging.services.metering import usage_invoice_lines
from tests.factories import OrganizationFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

MARCH = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)


def sends(organization, count, *, when, channel="sms", billable="0.5000", currency=None):
    return [
        UsageRecordFactory(
            organization=organization,
            channel=channel,
            billable_amount=Decimal(billable),
            currency=currency or organization.currency,
            created_at=when,
        )
        for _ in range(count)
    ]


def test_messagings_usage_is_a_registered_source():
    assert usage_invoice_lines in metering._sources


def test_last_months_sends_become_one_usage_invoice():
    organization = OrganizationFactory(country="US", currency="USD")
    other = OrganizationFactory(country="US", currency="USD")
    in_march = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    sends(organization, 3, when=in_march)
    sends(organization, 2, when=in_march, billable="0.6000")  # billed after a markup change: its own line
    sends(organization, 4, when=in_march, channel="whatsapp", billable="0.7500")
    sends(organization, 2, when=in_march, channel="email", billable="0.2500")
    sends(organization, 5, when=in_march, channel="webhook", billable="0")  # free: no line
    sends(organization, 1, when=datetime(2026, 2, 28, 23, 59, tzinfo=UTC))  # February: not this invoice
    sends(organization, 1, when=datetime(2026, 4, 1, 0, 0, tzinfo=UTC))  # April
    sends(other, 7, when=in_march)

    with freeze_time("2026-04-01 01:00:00+00:00"):
        assert tasks.invoice_metered_usage() == 2
        assert tasks.invoice_metered_usage() == 0  # once a month

    invoice = Invoice.objects.unscoped().get(organization=organization)
    lines = InvoiceLine.objects.unscoped().filter(invoice=invoice).order_by("position", "id")
    assert [(line.description, line.quantity, line.unit_amount, line.amount, line.kind) for line in lines] == [
        ("Emails", Decimal("2"), Decimal("0.2500"), Decimal("0.50"), "usage"),
        ("SMS messages", Decimal("3"), Decimal("0.5000"), Decimal("1.50"), "usage"),
        ("SMS messages", Decimal("2"), Decimal("0.6000"), Decimal("1.20"), "usage"),
        ("WhatsApp messages", Decimal("4"), Decimal("0.7500"), Decimal("3.00"), "usage"),
    ]
    assert invoice.subtotal == Decimal("6.20") and (invoice.period_start, invoice.period_end) == MARCH
    assert Invoice.objects.unscoped().get(organization=other).subtotal == Decimal("3.50")


def test_usage_in_another_currency_is_converted_or_left_out_and_logged(settings, caplog):
    settings.USAGE_EXCHANGE_RATES = {("USD", "INR"): Decimal("84.10")}
    organization = OrganizationFactory(country="IN", currency="INR")
    when = datetime(2026, 3, 3, tzinfo=UTC)
    sends(organization, 2, when=when, billable="0.0095", currency="USD")  # Twilio's price, marked up
    sends(organization, 1, when=when, billable="0.4000")  # already in rupees
    sends(organization, 3, when=when, channel="whatsapp", billable="0.0100", currency="EUR")  # no rate
    with caplog.at_level(logging.ERROR, logger="messaging.services.metering"):
        lines = usage_invoice_lines(organization, *MARCH)
    assert lines == [
        ("SMS messages", 1, Decimal("0.4000")),
        ("SMS messages (USD 0.0095 each at 84.10)", 2, Decimal("0.7990")),  # 0.79895, to four places
    ]
    assert "EUR:INR" in caplog.text and "left off its invoice" in caplog.text


def test_the_billing_page_shows_this_months_metered_usage(client, org_owner):
    organization, owner = org_owner
    now = timezone.now()
    sends(organization, 12, when=now, billable="0.6500")
    sends(organization, 3, when=now, channel="webhook", billable="1.0000")
    last_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timezone.timedelta(seconds=1)
    sends(organization, 40, when=last_month)
    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    section = page[page.index('data-testid="metered-usage"') :]
    assert 'SMS messages</td><td class="num">12</td><td class="num">0.6500</td><td class="num">7.80</td>' in section
    assert 'Buyer webhook deliveries</td><td class="num">3</td>' in section
    assert "10.80 INR" in section  # 7.80 + 3.00, before tax
    assert ">40<" not in section
