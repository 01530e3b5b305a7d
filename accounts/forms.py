from __future__ import annotations

from django import forms
from django.utils import timezone

from billing.models import Plan

from .constants import ApiKeyScope, Role
from .models import Organization, User

ORGANIZATION_FORM_FIELDS = [
    "name",
    "industry",
    "company_size",
    "country",
    "timezone",
    "currency",
    "default_phone_region",
    "website",
    "phone",
    "address",
    "tax_id",
]


class OrganizationForm(forms.ModelForm):
    # A website typed without a scheme means https (Django 6's default, adopted now).
    website = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Organization
        fields = ORGANIZATION_FORM_FIELDS
        labels = {"name": "Business name", "default_phone_region": "Default phone region"}
        widgets = {"address": forms.Textarea(attrs={"rows": 2})}


class BusinessDetailsForm(OrganizationForm):
    """Onboarding step 1: the same fields as organization settings, for a workspace that does not exist yet."""

    def to_session(self) -> dict:
        return {name: str(value) for name, value in self.cleaned_data.items()}


class PlanChoiceForm(forms.Form):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.filter(is_public=True), empty_label=None, widget=forms.RadioSelect
    )


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name"]


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.AGENT)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use this key, e.g. “Zapier” or “Supplier ACME”.")
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, initial=[ApiKeyScope.READ]
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Leave empty for a key that does not expire.",
    )

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value and value <= timezone.now():
            raise forms.ValidationError("Choose a time in the future.")
        return value
