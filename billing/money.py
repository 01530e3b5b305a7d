"""Money for billing: Decimal amounts in a currency, converted to and from the providers' integer minor units,
and the tax that applies to an organization. Never floats."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from .models import TaxKind

# ISO 4217 minor-unit exponents of the currencies LeadFlow bills in (accounts.constants.Currency); all two today,
# listed so a zero-decimal currency added later is a one-line change here, not a bug.
MINOR_UNIT_EXPONENT = {"INR": 2, "USD": 2, "EUR": 2, "GBP": 2, "AUD": 2, "CAD": 2, "SGD": 2, "AED": 2}
ZERO = Decimal("0")


def exponent(currency: str) -> int:
    return MINOR_UNIT_EXPONENT.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def quantize(amount, currency: str) -> Decimal:
    return Decimal(str(amount)).quantize(quantum(currency), rounding=ROUND_HALF_UP)


def to_minor(amount, currency: str) -> int:
    """``Decimal("499.00")`` INR → ``49900`` paise. Refuses amounts finer than the minor unit."""
    value = Decimal(str(amount))
    if value != quantize(value, currency):
        raise ValueError(f"{value} {currency} is not a whole number of minor units")
    return int(value.scaleb(exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    return quantize(Decimal(int(minor)).scaleb(-exponent(currency)), currency)


@dataclass(frozen=True)
class TaxTreatment:
    kind: str
    rate: Decimal  # percent
    sac_code: str = ""
    supplier_tax_id: str = ""
    note: str = ""

    def tax_on(self, net: Decimal, currency: str) -> Decimal:
        return quantize(net * self.rate / 100, currency)

    def gross(self, net, currency: str) -> Decimal:
        net = quantize(net, currency)
        return net + self.tax_on(net, currency)

    def split_gross(self, gross, currency: str) -> tuple[Decimal, Decimal]:
        """(net, tax) of a tax-inclusive amount, in whole minor units, adding up to ``gross`` exactly."""
        gross = quantize(gross, currency)
        net = quantize(gross * 100 / (100 + self.rate), currency)
        return net, gross - net


def tax_for(organization) -> TaxTreatment:
    """GST for Indian customers; VAT (or reverse charge, with a VAT id) elsewhere."""
    if str(organization.country) == "IN":
        return TaxTreatment(
            kind=TaxKind.GST,
            rate=Decimal(settings.BILLING_GST_RATE),
            sac_code=settings.BILLING_GST_SAC,
            supplier_tax_id=settings.BILLING_SUPPLIER_GSTIN,
        )
    if organization.tax_id:
        return TaxTreatment(
            kind=TaxKind.VAT,
            rate=ZERO,
            supplier_tax_id=settings.BILLING_SUPPLIER_VAT_ID,
            note="Reverse charge: VAT to be accounted for by the recipient.",
        )
    rate = Decimal(settings.BILLING_VAT_RATE)
    return TaxTreatment(
        kind=TaxKind.VAT if rate else TaxKind.NONE, rate=rate, supplier_tax_id=settings.BILLING_SUPPLIER_VAT_ID
    )


def charge_amount(*, organization, net, currency: str) -> Decimal:
    """What a provider charges for ``net`` (a plan price before tax): the price plus the organization's tax."""
    return tax_for(organization).gross(net, currency)
