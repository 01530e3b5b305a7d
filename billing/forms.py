from __future__ import annotations

from decimal import Decimal

from django import forms
from django_countries import countries

from accounts.constants import Currency

from .models import BillingInterval, Plan


def _public_plans():
    return Plan.objects.filter(is_public=True)


class PricingCheckoutForm(forms.Form):
    """The pricing page's "Start": who is buying, for which business, and the plan."""

    plan = forms.ModelChoiceField(queryset=_public_plans(), to_field_name="code", widget=forms.HiddenInput)
    interval = forms.ChoiceField(choices=BillingInterval.choices, initial=BillingInterval.MONTHLY)
    currency = forms.ChoiceField(choices=Currency.choices, initial=Currency.INR)
    email = forms.EmailField(label="Work email")
    name = forms.CharField(label="Business name", max_length=120)
    country = forms.ChoiceField(choices=countries, initial="IN")
    tax_id = forms.CharField(label="GSTIN / VAT id", max_length=32, required=False)

    def clean(self):
        data = super().clean()
        plan, currency, interval = data.get("plan"), data.get("currency"), data.get("interval")
        if plan and currency and interval and plan.price_for(currency, interval) is None:
            self.add_error("currency", f"The {plan.name} plan is not sold in {currency}.")
        return data


class SubscribeForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=_public_plans(), to_field_name="code")
    interval = forms.ChoiceField(choices=BillingInterval.choices, initial=BillingInterval.MONTHLY)


class TopUpForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("1.00"), max_digits=12, decimal_places=2)
    save_method = forms.BooleanField(
        required=False,
        label="Save the card for auto-recharge",
        help_text="Charged off-session when the balance runs low",
    )
