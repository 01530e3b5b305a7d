"""Operator actions on organizations' billing, shared by the Organization and Subscription admins."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from leadflow.exceptions import ServiceError

from .services import TRIAL_EXTENSION_MAX_DAYS, subscription_extend_trial


class TrialExtensionForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=TRIAL_EXTENSION_MAX_DAYS, initial=7, label="Extend by (days)")


def extend_trials(modeladmin: admin.ModelAdmin, request, organizations: list, selected_ids: list[str]):
    """The admin action's two steps: ask for the number of days, then extend each organization's trial through
    ``subscription_extend_trial`` (audited there) and say what happened to each."""
    form = TrialExtensionForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        extended = 0
        for organization in organizations:
            try:
                subscription = subscription_extend_trial(
                    organization=organization, days=form.cleaned_data["days"], actor=request.user, request=request
                )
            except ServiceError as error:
                modeladmin.message_user(request, error.message, messages.WARNING)
                continue
            extended += 1
            modeladmin.message_user(
                request,
                f"{organization}: trial now ends {subscription.trial_ends_at:%Y-%m-%d %H:%M} UTC.",
                messages.SUCCESS,
            )
        if not extended:
            modeladmin.message_user(request, "No trial was extended.", messages.WARNING)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Extend trials",
        "form": form,
        "organizations": organizations,
        "selected_ids": selected_ids,
        "action": request.POST.get("action", "extend_trial"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/billing/extend_trial.html", context)
