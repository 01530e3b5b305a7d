"""Forms of the campaign pages and the buyer portal. They parse input; every rule stays in the models' validation
and the services, whose refusals come back through ``leads.forms.add_errors``."""

from __future__ import annotations

import json
from decimal import Decimal

from django import forms

from leads.constants import RuleOperator

from .constants import DeliveryKind, FieldType, ReturnReason
from .models import Buyer, BuyerSubscription, Campaign, Category, Supplier
from .schema import field_filter_errors, field_schema_errors

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
MONEY = {"max_digits": 14, "decimal_places": 2}


class CommaListField(forms.CharField):
    """``"a, b, c"`` ↔ ``["a", "b", "c"]``."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [part.strip() for part in text.split(",") if part.strip()]


# Categories ----------------------------------------------------------------------------------------------------------


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "slug"]


class CategoryFieldForm(forms.Form):
    """One row of the field schema editor."""

    name = forms.RegexField(
        regex=r"^[a-z][a-z0-9_]{0,49}$",
        required=False,
        error_messages={"invalid": "Lower-case letters, digits and underscores, starting with a letter."},
    )
    label = forms.CharField(max_length=120, required=False)
    type = forms.ChoiceField(choices=FieldType.choices, initial=FieldType.TEXT)
    required = forms.BooleanField(required=False)
    choices = CommaListField(required=False, help_text="For choice fields, comma separated")

    def as_field(self) -> dict | None:
        data = self.cleaned_data
        if not data.get("name") or data.get("DELETE"):
            return None
        field = {"name": data["name"], "label": data.get("label") or data["name"], "type": data["type"]}
        if data.get("required"):
            field["required"] = True
        if data["type"] == FieldType.CHOICE or data.get("choices"):
            field["choices"] = data.get("choices") or []
        return field


class BaseFieldFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        errors = field_schema_errors(self.fields_list())
        if errors:
            raise forms.ValidationError(errors)

    def fields_list(self) -> list[dict]:
        return [field for form in self.forms if getattr(form, "cleaned_data", None) and (field := form.as_field())]


CategoryFieldFormSet = forms.formset_factory(CategoryFieldForm, formset=BaseFieldFormSet, extra=2, can_delete=True)


def category_field_initial(category: Category) -> list[dict]:
    return [
        {
            "name": field["name"],
            "label": field.get("label", ""),
            "type": field["type"],
            "required": field.get("required", False),
            "choices": field.get("choices") or [],
        }
        for field in category.fields
    ]


# Campaigns -----------------------------------------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "category",
            "name",
            "price_per_lead",
            "distribution_logic",
            "buyers_pick_states",
            "ad_channel",
            "daily_budget",
            "total_budget",
            "ad_spend",
            "return_window_hours",
            "auto_redistribute",
            "redistribute_max_rounds",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.order_by("name")  # the request's organization


class CampaignSpendForm(forms.Form):
    """Ad spend as the ad platform reports it, for a day (today unless said otherwise)."""

    amount = forms.DecimalField(help_text="Negative to correct an earlier figure", **MONEY)
    spent_on = forms.DateField(
        label="Day", required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Empty: today"
    )


class SubscriptionForm(forms.ModelForm):
    states = CommaListField(required=False, help_text="State codes, comma separated (IN-MH, US-CA); empty: all")
    schedule_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple, help_text="None: every day"
    )

    class Meta:
        model = BuyerSubscription
        fields = [
            "buyer",
            "campaign",
            "is_active",
            "hourly_cap",
            "daily_cap",
            "weekly_cap",
            "monthly_cap",
            "states",
            "schedule_days",
            "schedule_start",
            "schedule_end",
            "priority",
            "weight",
            "price_override",
        ]
        widgets = {
            "schedule_start": forms.TimeInput(attrs={"type": "time"}),
            "schedule_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def __init__(self, *args, fixed: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["buyer"].queryset = Buyer.objects.order_by("name")
        self.fields["campaign"].queryset = Campaign.objects.order_by("name")
        if fixed:  # the page's own buyer or campaign: not chosen on the form
            self.fields[fixed].widget = forms.HiddenInput()


class FieldFilterForm(forms.Form):
    field = forms.CharField(max_length=120, required=False, help_text="state, city, custom.age …")
    operator = forms.ChoiceField(choices=RuleOperator.choices, required=False)
    value = forms.CharField(max_length=500, required=False)

    def as_rule(self) -> dict | None:
        data = self.cleaned_data
        if not data.get("field") or data.get("DELETE"):
            return None
        return {"field": data["field"].strip(), "operator": data.get("operator") or "", "value": data.get("value", "")}


class BaseFilterFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        errors = field_filter_errors(self.rules())
        if errors:
            raise forms.ValidationError(errors)

    def rules(self) -> list[dict]:
        return [rule for form in self.forms if getattr(form, "cleaned_data", None) and (rule := form.as_rule())]


FieldFilterFormSet = forms.formset_factory(FieldFilterForm, formset=BaseFilterFormSet, extra=2, can_delete=True)


# Buyers --------------------------------------------------------------------------------------------------------------


class BuyerForm(forms.ModelForm):
    class Meta:
        model = Buyer
        fields = [
            "name",
            "company",
            "email",
            "phone",
            "status",
            "timezone",
            "credit_limit",
            "weekly_spend_limit",
            "monthly_spend_limit",
            "low_balance_threshold",
            "auto_recharge_enabled",
            "auto_recharge_threshold",
            "auto_recharge_amount",
        ]


class WalletCreditForm(forms.Form):
    amount = forms.DecimalField(**MONEY, min_value=Decimal("0.01"))
    note = forms.CharField(max_length=255, required=False)


class WalletAdjustForm(forms.Form):
    amount = forms.DecimalField(**MONEY, help_text="Negative takes money out")
    note = forms.CharField(max_length=255, help_text="Why: it stays on the ledger")


class DeliveryMethodForm(forms.Form):
    kind = forms.ChoiceField(choices=DeliveryKind.choices)
    destination = forms.CharField(max_length=254, required=False, help_text="Email address or phone number")
    url = forms.URLField(
        max_length=2000, required=False, assume_scheme="https", help_text="Webhook and CRM: where to post"
    )
    field_template = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='CRM only, JSON: {"FirstName": "{first_name}", "Phone": "{phone}", "Age": "{custom.age}"}',
    )

    def clean_field_template(self):
        text = self.cleaned_data.get("field_template", "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}.") from None
        return value

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == DeliveryKind.CRM and not data.get("field_template"):
            self.add_error("field_template", "A CRM post needs a field template.")
        return data


class InviteForm(forms.Form):
    max_uses = forms.IntegerField(min_value=1, required=False, help_text="Empty: any number")
    expires_in_days = forms.IntegerField(min_value=1, max_value=365, required=False, initial=14)


# Suppliers -----------------------------------------------------------------------------------------------------------


class SupplierForm(forms.ModelForm):
    campaigns = forms.ModelMultipleChoiceField(
        queryset=Campaign.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Supplier
        fields = ["name", "email", "payout_per_lead", "is_active", "campaigns"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaigns"].queryset = Campaign.objects.order_by("name")


class SupplierKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What will use it, e.g. the supplier's CRM")


# Returns and usage ----------------------------------------------------------------------------------------------------


class ReturnDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve and refund"), ("reject", "Reject")])
    resell = forms.BooleanField(required=False, help_text="Offer the lead to the campaign's other buyers")
    note = forms.CharField(max_length=500, required=False, help_text="Needed to reject: the buyer sees it")


class MarkupForm(forms.Form):
    markup_percent = forms.DecimalField(max_digits=6, decimal_places=2, min_value=0, max_value=1000)


PERIODS = [("today", "Today"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("all", "All time")]


class PeriodForm(forms.Form):
    period = forms.ChoiceField(choices=PERIODS, required=False, initial="30d")


# The buyer portal ----------------------------------------------------------------------------------------------------


class PortalReturnForm(forms.Form):
    reason = forms.ChoiceField(choices=ReturnReason.choices)
    note = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PortalJoinForm(forms.Form):
    code = forms.CharField(max_length=32, help_text="The code your lead seller gave you")
    name = forms.CharField(max_length=150, required=False, label="Your name")
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, required=False, strip=False)
    buyer_name = forms.CharField(
        max_length=120, required=False, label="Company name", help_text="When the code registers a new buyer"
    )
    company = forms.CharField(max_length=255, required=False, label="Legal name")
    phone = forms.CharField(max_length=20, required=False)

    def __init__(self, *args, signed_in: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if signed_in:
            for name in ("name", "email", "password"):
                del self.fields[name]
        else:
            self.fields["email"].required = True
            self.fields["password"].required = True
