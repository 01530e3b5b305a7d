from django import forms

from .models import RetentionPolicy

ERASE_CONFIRMATION = "erase"


class PersonForm(forms.Form):
    email = forms.CharField(required=False, max_length=320, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    phone = forms.CharField(required=False, max_length=64, help_text="With or without the country code")

    def clean(self):
        cleaned = super().clean()
        if not (cleaned.get("email") or "").strip() and not (cleaned.get("phone") or "").strip():
            raise forms.ValidationError("Give the person's email address or phone number.")
        return cleaned


class EraseForm(PersonForm):
    confirm = forms.CharField(
        label=f"Type “{ERASE_CONFIRMATION}” to confirm",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip().lower()
        if value != ERASE_CONFIRMATION:
            raise forms.ValidationError(f"Type “{ERASE_CONFIRMATION}”: erasing cannot be undone.")
        return value


class RetentionPolicyForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ["raw_submissions_days", "webhook_logs_days", "closed_leads_days"]
        labels = {
            "raw_submissions_days": "Raw payloads (days)",
            "webhook_logs_days": "Outbound webhook logs (days)",
            "closed_leads_days": "Closed leads (days)",
        }
