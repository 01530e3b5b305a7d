"""Forms of the lead pages. They only parse input: normalization and every business rule stay in the intake
pipeline and the services, whose refusals come back through ``add_errors``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.urls import reverse
from django.utils.dateparse import parse_date

from campaigns.models import Campaign
from leadflow.exceptions import ServiceError

from .intake.mapping import CONTACT_FIELDS
from .models import PipelineStage
from .page_selectors import assignable_members
from .services.imports import CUSTOM, IMPORT_TARGETS, MAX_BYTES, SKIP
from .services.leads import BULK_ACTIONS, MAX_BULK
from .services.merge import MERGE_FIELDS

UNASSIGNED = "none"
AMOUNT = {"max_digits": 14, "decimal_places": 2, "min_value": Decimal("0")}


def add_errors(form: forms.Form, errors: dict[str, list[str]] | ValidationError | ServiceError | Exception) -> None:
    """Put what a service or the intake pipeline refused on the form: on the field it names when the form has
    one, otherwise (``consent.at``, ``custom.budget``, ``non_field_errors`` …) above the form."""
    if isinstance(errors, ServiceError):
        errors = {errors.field or "non_field_errors": [errors.message]}
    elif isinstance(errors, ValidationError):
        errors = errors.message_dict if hasattr(errors, "error_dict") else {"non_field_errors": errors.messages}
    elif not isinstance(errors, dict):
        errors = {"non_field_errors": [str(errors)]}
    aliases = getattr(form, "error_aliases", {})
    for name, messages in errors.items():
        target = aliases.get(name, name)
        for message in messages if isinstance(messages, list | tuple) else [messages]:
            if target in form.fields:
                form.add_error(target, message)
            elif name in ("non_field_errors", "__all__"):
                form.add_error(None, message)
            else:
                form.add_error(None, f"{name.replace('_', ' ')}: {message}")


# Filters -------------------------------------------------------------------------------------------------------------


def lead_filter_params(query: QueryDict) -> QueryDict:
    """The list's query string as LeadFilter reads it: blank values dropped, and the page's "to" date (a plain
    date meaning the whole of that day) moved to the next midnight, as the filter's ``received_before`` is
    exclusive."""
    params = QueryDict(mutable=True)
    for name, values in query.lists():
        # An empty select ("All stages") means no filter, not a filter on "" (which the choice filters refuse).
        values = [value for value in values if value.strip()]
        if values and name not in ("cursor", "page"):
            params.setlist(name, values)
    before = parse_date(params.get("received_before") or "")
    if before is not None:
        params["received_before"] = (before + timedelta(days=1)).isoformat()
    return params


# Working a lead --------------------------------------------------------------------------------------------------


class LeadAddForm(forms.Form):
    """A lead typed in by hand: plain text fields, read by the intake pipeline like every other source.

    Managers and above (who may post to campaigns through the API too) can add it to a campaign: choosing one
    swaps in its category's fields (``campaigns.forms_schema``) and the lead is then distributed to its buyers.
    """

    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        empty_label="— none —",
        help_text="Adds its category's fields; the lead is offered to the campaign's buyers",
    )
    full_name = forms.CharField(label="Name", max_length=255, required=False)
    email = forms.CharField(max_length=254, required=False, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    phone = forms.CharField(max_length=40, required=False, widget=forms.TextInput(attrs={"type": "tel"}))
    company = forms.CharField(max_length=255, required=False)
    city = forms.CharField(max_length=120, required=False)
    state = forms.CharField(label="State / region", max_length=100, required=False)
    country = forms.CharField(max_length=60, required=False, help_text="Name or two-letter code")
    tags = forms.CharField(max_length=1000, required=False, help_text="Comma separated")
    deal_value = forms.DecimalField(required=False, **AMOUNT)

    error_aliases = {"first_name": "full_name", "last_name": "full_name"}

    def __init__(self, *args, can_choose_campaign: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_choose_campaign:
            del self.fields["campaign"]
            return
        # Built per request: the scoped manager offers only the request's organization's campaigns.
        self.fields["campaign"].queryset = Campaign.objects.select_related("category").order_by("name", "id")
        self.fields["campaign"].widget.attrs.update(
            {
                "hx-get": reverse("leads:add_fields"),
                "hx-trigger": "change",
                "hx-target": "#category-fields",
                "hx-swap": "outerHTML",
            }
        )

    def chosen_campaign(self) -> Campaign | None:
        """The campaign picked, once validated (even when other fields are wrong, so its fields still show)."""
        return getattr(self, "cleaned_data", {}).get("campaign")

    def payload(self) -> dict[str, Any]:
        payload = {
            name: value for name, value in self.cleaned_data.items() if value not in (None, "") and name != "campaign"
        }
        if "deal_value" in payload:
            payload["deal_value"] = str(payload["deal_value"])
        return payload


class LeadEditForm(forms.Form):
    first_name = forms.CharField(max_length=120, required=False)
    last_name = forms.CharField(max_length=120, required=False)
    full_name = forms.CharField(max_length=255, required=False, help_text="Left as is, it follows first and last name")
    email = forms.CharField(max_length=254, required=False, widget=forms.EmailInput)
    phone = forms.CharField(max_length=40, required=False, widget=forms.TextInput(attrs={"type": "tel"}))
    company = forms.CharField(max_length=255, required=False)
    job_title = forms.CharField(max_length=255, required=False)
    city = forms.CharField(max_length=120, required=False)
    state = forms.CharField(label="State / region", max_length=100, required=False)
    postal_code = forms.CharField(max_length=20, required=False)
    country = forms.CharField(max_length=60, required=False)
    deal_value = forms.DecimalField(required=False, **AMOUNT)

    @classmethod
    def for_lead(cls, lead, data=None):
        initial = {name: getattr(lead, name) for name in (*CONTACT_FIELDS, "deal_value")}
        return cls(data, initial=initial, prefix="edit")

    def changes(self) -> dict[str, Any]:
        """Only what the person changed, so lead_update can tell "renamed" from "left alone" (and recompute the
        full name when only first or last name changed)."""
        return {name: self.cleaned_data[name] for name in self.changed_data}


class StageForm(forms.Form):
    stage = forms.ModelChoiceField(queryset=PipelineStage.objects.none(), empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Built per request: the tenant scope exists only while a request runs.
        self.fields["stage"].queryset = PipelineStage.objects.order_by("position", "id")


class OwnerForm(forms.Form):
    owner = forms.ChoiceField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.members = {str(m.user_id): m.user for m in assignable_members()}
        self.fields["owner"].choices = [
            (UNASSIGNED, "Unassigned"),
            *((k, u.display_name) for k, u in self.members.items()),
        ]

    def chosen_owner(self):
        return self.members.get(self.cleaned_data["owner"])


class TagsForm(forms.Form):
    add = forms.CharField(max_length=1000, required=False, label="Add tags")
    remove = forms.CharField(max_length=40, required=False)

    def clean(self):
        data = super().clean()
        if not (data.get("add") or "").strip() and not (data.get("remove") or "").strip():
            raise ValidationError("Type a tag to add.")
        return data


class NoteForm(forms.Form):
    body = forms.CharField(label="Note", max_length=10000, widget=forms.Textarea(attrs={"rows": 3}))


class WonForm(forms.Form):
    amount = forms.DecimalField(required=False, help_text="Defaults to the deal value", **AMOUNT)
    won_on = forms.DateField(label="Won on", required=False, widget=forms.DateInput(attrs={"type": "date"}))


class LostForm(forms.Form):
    reason = forms.CharField(max_length=255, widget=forms.TextInput(attrs={"placeholder": "Why was it lost?"}))


# Many leads ------------------------------------------------------------------------------------------------------


class IdListField(forms.Field):
    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        values = value if isinstance(value, list | tuple) else [value] if value else []
        ids = []
        for item in values:
            if not str(item).isdigit():
                raise ValidationError("Select leads from the list.")
            ids.append(int(item))
        return list(dict.fromkeys(ids))

    def validate(self, value):
        super().validate(value)
        if len(value) > MAX_BULK:
            raise ValidationError(f"At most {MAX_BULK} leads at a time.")


BULK_ACTION_LABELS = {
    "stage": "Move to stage",
    "assign": "Assign to",
    "tag": "Add tags",
    "untag": "Remove tags",
    "delete": "Delete",
}


class BulkActionForm(forms.Form):
    ACTION_LABELS = BULK_ACTION_LABELS

    action = forms.ChoiceField(choices=[(action, BULK_ACTION_LABELS[action]) for action in BULK_ACTIONS])
    ids = IdListField(error_messages={"required": "Select at least one lead."})
    stage = forms.ModelChoiceField(queryset=PipelineStage.objects.none(), required=False)
    owner = forms.ChoiceField(required=False)
    tags = forms.CharField(max_length=1000, required=False)
    # The list's query string, so the answer re-renders the same filtered list.
    query = forms.CharField(max_length=4000, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = PipelineStage.objects.order_by("position", "id")
        members = assignable_members()
        self.fields["owner"].choices = [
            ("", "Choose…"),
            (UNASSIGNED, "Unassigned"),
            *((str(m.user_id), m.user.display_name) for m in members),
        ]

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action == "stage" and not data.get("stage"):
            self.add_error("stage", "Pick a stage.")
        if action == "assign" and not data.get("owner"):
            self.add_error("owner", "Pick who gets the leads.")
        if action in ("tag", "untag") and not (data.get("tags") or "").strip():
            self.add_error("tags", "Type at least one tag.")
        return data

    def value(self):
        action = self.cleaned_data["action"]
        if action == "stage":
            return self.cleaned_data["stage"].pk
        if action == "assign":
            owner = self.cleaned_data["owner"]
            return None if owner == UNASSIGNED else owner
        if action in ("tag", "untag"):
            return self.cleaned_data["tags"]
        return None


class MergeForm(forms.Form):
    """One radio group per field: which lead's value the merged lead keeps."""

    def __init__(self, *args, leads, preview, **kwargs):
        super().__init__(*args, **kwargs)
        ids = [(str(lead.pk), str(lead.pk)) for lead in leads]
        for name in MERGE_FIELDS:
            self.fields[name] = forms.TypedChoiceField(
                choices=ids, coerce=int, required=False, initial=str(preview[name]["from"]), widget=forms.RadioSelect
            )

    def choices(self) -> dict[str, int]:
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}


# Imports -----------------------------------------------------------------------------------------------------------


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="The first row names the columns. Excel: File → Save as → CSV.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # Refused before reading, so a huge upload never sits in memory.
        if upload.size > MAX_BYTES:
            raise ValidationError(
                f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into smaller files."
            )
        return upload


def import_target_label(target: str) -> str:
    if target == CUSTOM:
        return "Custom field (named after the column)"
    return target.replace("_", " ").capitalize().replace("Utm ", "UTM ").replace("Id", "ID")


class ImportMappingForm(forms.Form):
    """A select per CSV column. Field names are positional (``column_0`` …) because headers can hold any text."""

    tags = forms.CharField(max_length=1000, required=False, help_text="Added to every imported lead; comma separated")

    def __init__(self, *args, lead_import, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = list(lead_import.headers)
        choices = [(SKIP, "— skip this column —"), *((t, import_target_label(t)) for t in IMPORT_TARGETS)]
        for index, header in enumerate(self.headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header, choices=choices, required=False, initial=lead_import.mapping.get(header, CUSTOM)
            )
        self.order_fields([*(f"column_{i}" for i in range(len(self.headers))), "tags"])

    def column_fields(self):
        return [self[f"column_{index}"] for index in range(len(self.headers))]

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(f"column_{index}") or SKIP for index, header in enumerate(self.headers)}
