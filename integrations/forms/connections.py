"""Forms of the Integrations page. They parse input; the services validate and say no."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.urls import reverse

from campaigns.forms_schema import optional_schema_fields
from campaigns.models import Campaign

from ..constants import HOSTED_FORM_FIELDS, IntegrationProvider


class ConnectionCreateForm(forms.Form):
    """Connections made by name alone: a generic webhook or a Google Ads lead form (its key is generated)."""

    provider = forms.ChoiceField(
        choices=[
            (IntegrationProvider.WEBHOOK.value, IntegrationProvider.WEBHOOK.label),
            (IntegrationProvider.GOOGLE_ADS.value, IntegrationProvider.GOOGLE_ADS.label),
            (IntegrationProvider.FORM.value, IntegrationProvider.FORM.label),
        ]
    )
    name = forms.CharField(max_length=120, help_text="e.g. “Zapier – website form” or “Google Ads – brochure form”")


class FacebookConnectForm(forms.Form):
    page_access_token = forms.CharField(
        label="Page access token",
        widget=forms.PasswordInput(render_value=False),
        help_text="From Meta's Graph API Explorer or Business settings; needs leads_retrieval and "
        "pages_manage_metadata.",
    )
    name = forms.CharField(max_length=120, required=False, help_text="Defaults to the page's name")


def _lines(text: str, *, what: str) -> dict[str, str]:
    """``field = value`` per line (blank lines and ``#`` comments skipped)."""
    parsed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise forms.ValidationError(f"Line {number}: write “lead field = {what}”.")
        target, value = (part.strip() for part in line.split("=", 1))
        if not target:
            raise forms.ValidationError(f"Line {number}: the lead field is missing.")
        parsed[target] = value
    return parsed


def mapping_as_text(mapping: dict[str, Any]) -> str:
    return "\n".join(f"{target} = {value}" for target, value in mapping.items())


def defaults_as_text(defaults: dict[str, Any]) -> str:
    return "\n".join(
        f"{target} = {value if isinstance(value, str) else json.dumps(value)}" for target, value in defaults.items()
    )


class MappingForm(forms.Form):
    mapping = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        required=False,
        help_text="One per line: lead field = path in the payload, e.g. email = data.contact.email",
    )
    defaults = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        required=False,
        help_text="One per line: lead field = value, used when the payload has none, e.g. utm_source = zapier",
    )

    def clean_mapping(self) -> dict[str, str]:
        return _lines(self.cleaned_data.get("mapping") or "", what="path")

    def clean_defaults(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        for target, value in _lines(self.cleaned_data.get("defaults") or "", what="value").items():
            # JSON where it parses (lists for tags, true for consent), text otherwise.
            try:
                defaults[target] = json.loads(value) if value[:1] in "[{" or value in ("true", "false") else value
            except ValueError:
                defaults[target] = value
        return defaults


class HostedFormSettingsForm(forms.Form):
    title = forms.CharField(max_length=200)
    fields = forms.MultipleChoiceField(choices=list(HOSTED_FORM_FIELDS.items()), widget=forms.CheckboxSelectMultiple)
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        empty_label="— none —",
        help_text="Its category's fields join the form (the required ones always) and each lead is offered to "
        "the campaign's buyers.",
    )
    category_fields = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Optional category fields to ask for"
    )
    consent_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Shown next to a checkbox the visitor must tick; stored with each lead, with the time and IP.",
    )
    thank_you_url = forms.URLField(required=False, assume_scheme="https", help_text="Where to send people after")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Built per request: the scoped manager offers only the request's organization's campaigns.
        campaigns = Campaign.objects.select_related("category").order_by("name", "id")
        self.fields["campaign"].queryset = campaigns
        self.fields["campaign"].widget.attrs.update(
            {
                "hx-get": reverse("integrations:hosted_form_category_fields"),
                "hx-trigger": "change",
                "hx-target": "#hosted-form-category-fields",
                "hx-swap": "outerHTML",
            }
        )
        chosen = self.data.get(self.add_prefix("campaign")) if self.is_bound else self.initial.get("campaign")
        chosen = getattr(chosen, "pk", chosen)
        self.chosen_campaign = campaigns.filter(pk=chosen).first() if str(chosen or "").isdigit() else None
        schema = self.chosen_campaign.category.fields if self.chosen_campaign else []
        self.required_category_fields = [field for field in schema if field.get("required")]
        self.fields["category_fields"].choices = [
            (field["name"], field.get("label") or field["name"]) for field in optional_schema_fields(schema)
        ]


class LinkedInConnectForm(forms.Form):
    access_token = forms.CharField(
        label="Access token",
        widget=forms.PasswordInput(render_value=False),
        help_text="A LinkedIn token with r_marketing_leadgen_automation (OAuth sign-in is not built yet).",
    )
    sponsored_account = forms.RegexField(
        regex=r"^(urn:li:sponsoredAccount:)?\d+$",
        label="Ad account id",
        help_text="The number in Campaign Manager's URL, or urn:li:sponsoredAccount:…",
    )
    name = forms.CharField(max_length=120, required=False)


class ConversionsSettingsForm(forms.Form):
    """Sending a Facebook page's lead stages to Meta's Conversions API for CRM."""

    conversions_enabled = forms.BooleanField(required=False, label="Send lead stages to Meta")
    dataset_id = forms.CharField(
        max_length=32,
        required=False,
        label="Dataset (pixel) id",
        help_text="Events Manager → your CRM dataset → Settings.",
    )
    conversions_stages = forms.CharField(
        max_length=500,
        required=False,
        label="Stages to send",
        help_text="Stage names or kinds (open, won, lost), comma-separated; empty sends every stage change. Meta "
        "asks for every stage, including the first.",
    )
    access_token = forms.CharField(
        required=False,
        label="Conversions API token (optional)",
        widget=forms.PasswordInput(render_value=False),
        help_text="Generated in Events Manager for the dataset; without one the page's token is used.",
    )

    def clean_conversions_stages(self) -> list[str]:
        text = self.cleaned_data.get("conversions_stages") or ""
        return [stage.strip() for stage in text.split(",") if stage.strip()]
