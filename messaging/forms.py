"""Forms of the messaging pages. Services validate; forms parse and carry the services' refusals back."""

from __future__ import annotations

import json

from django import forms

from leads.constants import RuleOperator

from .constants import AutomationAction, AutomationTrigger, MessageChannel, NotificationChannel, NotificationEvent
from .models import MessageTemplate, MessagingSettings, TemplateVariant


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write a reply…"}), required=False)
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.none(), required=False, empty_label="No template"
    )

    def __init__(self, *args, conversation=None, **kwargs):
        super().__init__(*args, **kwargs)
        if conversation is not None:
            self.fields["template"].queryset = MessageTemplate.objects.filter(
                channel=conversation.channel, is_active=True
            ).order_by("name")

    def clean(self):
        data = super().clean()
        if not data.get("body", "").strip() and not data.get("template"):
            raise forms.ValidationError("Write a message or pick a template.")
        return data


class TemplateForm(forms.ModelForm):
    variables_text = forms.CharField(
        label="Variables (WhatsApp)",
        required=False,
        help_text="The lead field behind {{1}}, {{2}} …, comma separated, e.g. first_name, city",
    )

    class Meta:
        model = MessageTemplate
        fields = ["name", "channel", "language", "category", "subject", "body", "provider_template_id", "is_active"]
        widgets = {"body": forms.Textarea(attrs={"rows": 5})}
        help_texts = {
            "body": "SMS and email: {{first_name}}, {{custom.budget}} … WhatsApp: {{1}}, {{2}} …",
            "provider_template_id": "Twilio Content SID (HX…) for WhatsApp through Twilio; blank uses the name",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["variables_text"].initial = ", ".join(self.instance.variables or [])

    def clean_variables_text(self):
        return [part.strip() for part in self.cleaned_data["variables_text"].split(",") if part.strip()]


class VariantForm(forms.ModelForm):
    class Meta:
        model = TemplateVariant
        fields = ["label", "subject", "body", "provider_template_id", "weight", "is_active"]
        widgets = {"body": forms.Textarea(attrs={"rows": 3})}


class AutomationForm(forms.Form):
    name = forms.CharField(max_length=120)
    trigger = forms.ChoiceField(choices=AutomationTrigger.choices)
    hours = forms.IntegerField(required=False, min_value=1, help_text="For “no reply” and “no activity”")
    stage_id = forms.IntegerField(required=False, help_text="For “stage changes”: only into this stage (blank: any)")
    match = forms.ChoiceField(choices=[("all", "All conditions (AND)"), ("any", "Any condition (OR)")])
    conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: field operator value, e.g. “source equals facebook” or “custom.budget gte 50000”. "
        f"Operators: {', '.join(RuleOperator.values)}",
    )
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One per line: send_template welcome preferred · wait 60 · tag hot · change_stage <stage id> · "
        "assign <user id>|auto · notify owner|managers|admins <text> · webhook <url>",
    )
    stop_on_reply = forms.BooleanField(required=False, initial=True)
    is_active = forms.BooleanField(required=False, initial=True)

    def clean_conditions(self):
        rules = []
        for number, line in enumerate(self.cleaned_data["conditions"].splitlines(), start=1):
            parts = line.split(None, 2)
            if not parts:
                continue
            if len(parts) < 2 or parts[1] not in RuleOperator.values:
                raise forms.ValidationError(f"Line {number}: write “field operator value”.")
            rules.append({"field": parts[0], "operator": parts[1], "value": parts[2] if len(parts) > 2 else ""})
        return rules

    def clean_steps(self):
        steps = []
        for number, line in enumerate(self.cleaned_data["steps"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            action, args = parts[0], parts[1:]
            if action not in AutomationAction.values:
                raise forms.ValidationError(f"Line {number}: unknown action “{action}”.")
            try:
                steps.append({"action": action, "config": _step_config(action, args)})
            except (IndexError, ValueError):
                raise forms.ValidationError(f"Line {number}: the {action} step needs its settings.") from None
        return steps


def _step_config(action: str, args: list[str]) -> dict:
    if action == AutomationAction.SEND_TEMPLATE:
        return {"template": args[0], "channel": args[1] if len(args) > 1 else "preferred"}
    if action == AutomationAction.WAIT:
        return {"minutes": int(args[0])}
    if action == AutomationAction.TAG:
        return {"add": [a for a in args if not a.startswith("-")], "remove": [a[1:] for a in args if a.startswith("-")]}
    if action == AutomationAction.CHANGE_STAGE:
        return {"stage_id": int(args[0])}
    if action == AutomationAction.ASSIGN:
        return {"strategy": "auto"} if args[0] == "auto" else {"user_id": int(args[0])}
    if action == AutomationAction.NOTIFY:
        return {"recipients": args[0], "message": " ".join(args[1:])}
    return {"url": args[0]}


def step_line(step) -> str:
    config = step.config or {}
    match step.action:
        case AutomationAction.SEND_TEMPLATE:
            return f"send_template {config.get('template')} {config.get('channel', 'preferred')}"
        case AutomationAction.WAIT:
            return f"wait {config.get('minutes')}"
        case AutomationAction.TAG:
            return "tag " + " ".join([*config.get("add", []), *(f"-{t}" for t in config.get("remove", []))])
        case AutomationAction.CHANGE_STAGE:
            return f"change_stage {config.get('stage_id')}"
        case AutomationAction.ASSIGN:
            return "assign auto" if config.get("strategy") == "auto" else f"assign {config.get('user_id')}"
        case AutomationAction.NOTIFY:
            return f"notify {config.get('recipients')} {config.get('message')}"
    return f"webhook {config.get('url')}"


class MessagingSettingsForm(forms.ModelForm):
    meta_access_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text="Stored encrypted; blank keeps it"
    )

    class Meta:
        model = MessagingSettings
        fields = [
            "whatsapp_provider",
            "whatsapp_enabled",
            "sms_enabled",
            "email_enabled",
            "twilio_sms_from",
            "twilio_whatsapp_from",
            "twilio_messaging_service_sid",
            "meta_phone_number_id",
            "meta_business_account_id",
            "email_from",
            "email_reply_domain",
            "quiet_hours_enabled",
            "quiet_hours_start",
            "quiet_hours_end",
            "first_contact_target_minutes",
            "sla_escalation_enabled",
            "ai_enabled",
            "ai_monthly_budget",
        ]
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}),
        }


class PreferencesForm(forms.Form):
    phone = forms.CharField(required=False, help_text="Where SMS and WhatsApp notifications go (E.164)")

    def __init__(self, *args, current: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for event, label in NotificationEvent.choices:
            for channel, channel_label in NotificationChannel.choices:
                name = f"{event}__{channel}"
                self.fields[name] = forms.BooleanField(
                    required=False, label=f"{label}: {channel_label}", initial=current.get((event, channel), False)
                )

    def choices(self) -> dict[tuple[str, str], bool]:
        return {tuple(name.split("__")): value for name, value in self.cleaned_data.items() if "__" in name}


def as_json(value) -> str:
    return json.dumps(value, indent=2)


CHANNEL_CHOICES = MessageChannel.choices
