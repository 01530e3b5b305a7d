"""Forms of the webhook pages. They parse input; the services validate URLs and events and say no."""

from __future__ import annotations

from django import forms

from ..constants import WebhookEventType


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=2000, assume_scheme="https")
    description = forms.CharField(max_length=200, required=False, help_text="What receives these events")
    events = forms.MultipleChoiceField(
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The events posted to this URL",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
