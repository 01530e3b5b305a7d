"""Templates (with previews and A/B variants and their rates), automations (rules, steps, the execution log per
lead), the channels settings and the speed-to-lead report."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin
from leads.forms import add_errors
from leads.models import Lead

from .. import selectors
from ..forms import AutomationForm, MessagingSettingsForm, TemplateForm, VariantForm, step_line
from ..models import AutomationExecution, AutomationRule, MessageTemplate, TemplateVariant
from ..services.automations import rule_save
from ..services.channels import messaging_settings_for, messaging_settings_update
from ..services.sla import sla_report
from ..services.templates import template_create, template_errors, template_render, template_update, templates_sync


class ManagerMixin(OrganizationRequiredMixin):
    required_role = Role.MANAGER


class TemplateListView(ManagerMixin, View):
    def get(self, request):
        templates = list(MessageTemplate.objects.prefetch_related("variants").order_by("name", "channel"))
        stats = selectors.template_stats(templates)
        rows = []
        for template in templates:
            options = [(None, "A (template)")] + [(v, v.label) for v in template.variants.all()]
            rows.append(
                {
                    "template": template,
                    "variants": [
                        {"variant": v, "label": label, "stats": stats.get((template.pk, v.pk if v else None))}
                        for v, label in options
                    ],
                }
            )
        provider = messaging_settings_for(request.organization.pk).get_whatsapp_provider_display()
        return render(request, "messaging/pages/templates.html", {"rows": rows, "whatsapp_provider": provider})


class TemplateEditView(ManagerMixin, View):
    def _template(self, pk):
        return get_object_or_404(MessageTemplate, pk=pk) if pk else None

    def get(self, request, pk=None):
        template = self._template(pk)
        return render(
            request,
            "messaging/pages/template_edit.html",
            {"form": TemplateForm(instance=template), "template": template, "variant_form": VariantForm()},
        )

    def post(self, request, pk=None):
        template = self._template(pk)
        form = TemplateForm(request.POST, instance=template)
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
            fields["variables"] = form.cleaned_data["variables_text"]
            try:
                if template is None:
                    template = template_create(organization=request.organization, actor=request.user, **fields)
                else:
                    template_update(template=template, actor=request.user, **fields)
            except ServiceError as error:
                if error.field == "variables":
                    error.field = "variables_text"
                add_errors(form, error)
            else:
                messages.success(request, f"Template “{template.name}” saved.")
                return redirect("messaging:template_edit", template.pk)
        return render(
            request,
            "messaging/pages/template_edit.html",
            {"form": form, "template": template, "variant_form": VariantForm()},
            status=400,
        )


class VariantCreateView(ManagerMixin, View):
    def post(self, request, pk):
        template = get_object_or_404(MessageTemplate, pk=pk)
        form = VariantForm(request.POST)
        if form.is_valid():
            if TemplateVariant.objects.filter(template=template, label=form.cleaned_data["label"]).exists():
                form.add_error("label", "This template has a variant with this label.")
            else:
                TemplateVariant.objects.create(template=template, **form.cleaned_data)
                messages.success(request, "Variant added: sends are now split between the template and its variants.")
                return redirect("messaging:template_edit", template.pk)
        return render(
            request,
            "messaging/pages/template_edit.html",
            {"form": TemplateForm(instance=template), "template": template, "variant_form": form},
            status=400,
        )


class TemplatePreviewView(ManagerMixin, View):
    """The template being edited, rendered for the newest lead (htmx, as you type)."""

    def post(self, request):
        channel, body = request.POST.get("channel", ""), request.POST.get("body", "")
        variables = [p.strip() for p in request.POST.get("variables_text", "").split(",") if p.strip()]
        errors = template_errors(
            channel=channel, body=body, variables=variables, subject=request.POST.get("subject", "")
        )
        lead = Lead.objects.filter(duplicate_of__isnull=True).select_related("stage", "owner", "organization").first()
        preview = None
        if not errors:
            draft = MessageTemplate(
                organization=request.organization,
                channel=channel,
                body=body,
                subject=request.POST.get("subject", ""),
                variables=variables,
                name=request.POST.get("name", "draft"),
            )
            preview = template_render(draft, lead or Lead(organization=request.organization, full_name="Asha Rao"))
        return render(
            request, "messaging/partials/template_preview.html", {"errors": errors, "preview": preview, "lead": lead}
        )


class TemplateSyncView(ManagerMixin, View):
    required_role = Role.ADMIN

    def post(self, request):
        provider = messaging_settings_for(request.organization.pk).get_whatsapp_provider_display()
        try:
            changed = templates_sync(organization=request.organization)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Synced from {provider}: {changed} templates added or changed.")
        return redirect("messaging:templates")


class AutomationListView(ManagerMixin, View):
    def get(self, request):
        rules = AutomationRule.objects.prefetch_related("steps").order_by("name")
        return render(request, "messaging/pages/automations.html", {"rules": rules})


class AutomationEditView(ManagerMixin, View):
    def _rule(self, pk):
        return get_object_or_404(AutomationRule, pk=pk) if pk else None

    def _initial(self, rule):
        if rule is None:
            return {"match": "all", "stop_on_reply": True, "is_active": True}
        config, conditions = rule.trigger_config or {}, rule.conditions or {}
        return {
            "name": rule.name,
            "trigger": rule.trigger,
            "hours": config.get("hours"),
            "stage_id": config.get("stage_id"),
            "match": conditions.get("match", "all"),
            "conditions": "\n".join(
                f"{c['field']} {c['operator']} {c.get('value', '')}".strip() for c in conditions.get("rules", [])
            ),
            "steps": "\n".join(step_line(step) for step in rule.steps.all()),
            "stop_on_reply": rule.stop_on_reply,
            "is_active": rule.is_active,
        }

    def get(self, request, pk=None):
        rule = self._rule(pk)
        form = AutomationForm(initial=self._initial(rule))
        return render(request, "messaging/pages/automation_edit.html", {"form": form, "rule": rule})

    def post(self, request, pk=None):
        rule = self._rule(pk)
        form = AutomationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            config = {}
            if data["hours"]:
                config["hours"] = data["hours"]
            if data["stage_id"]:
                config["stage_id"] = data["stage_id"]
            try:
                rule = rule_save(
                    organization=request.organization,
                    rule=rule,
                    actor=request.user,
                    steps=data["steps"],
                    name=data["name"],
                    trigger=data["trigger"],
                    trigger_config=config,
                    conditions={"match": data["match"], "rules": data["conditions"]},
                    stop_on_reply=data["stop_on_reply"],
                    is_active=data["is_active"],
                )
            except ServiceError as error:
                field = error.field or ""
                if field.startswith("steps"):
                    error.field = "steps"
                elif field == "trigger_config":
                    error.field = "hours"
                add_errors(form, error)
            else:
                messages.success(request, f"Automation “{rule.name}” saved.")
                return redirect("messaging:automation_edit", rule.pk)
        return render(request, "messaging/pages/automation_edit.html", {"form": form, "rule": rule}, status=400)


class ExecutionLogView(ManagerMixin, View):
    def get(self, request):
        executions = AutomationExecution.objects.select_related("rule", "lead").prefetch_related("step_runs")
        lead_id = request.GET.get("lead", "")
        if lead_id.isdigit():
            executions = executions.filter(lead_id=int(lead_id))
        rule_id = request.GET.get("rule", "")
        if rule_id.isdigit():
            executions = executions.filter(rule_id=int(rule_id))
        return render(
            request,
            "messaging/pages/executions.html",
            {"executions": executions.order_by("-started_at")[:200], "lead_id": lead_id, "rule_id": rule_id},
        )


class MessagingSettingsView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN

    def get(self, request):
        row = messaging_settings_for(request.organization.pk)
        return render(request, "messaging/pages/settings.html", {"form": MessagingSettingsForm(instance=row)})

    def post(self, request):
        row = messaging_settings_for(request.organization.pk)
        form = MessagingSettingsForm(request.POST, instance=row)
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
            try:
                messaging_settings_update(
                    organization=request.organization,
                    actor=request.user,
                    request=request,
                    meta_access_token=form.cleaned_data["meta_access_token"] or None,
                    **fields,
                )
            except ServiceError as error:
                add_errors(form, error)
            else:
                messages.success(request, "Channels saved.")
                return redirect("messaging:settings")
        return render(request, "messaging/pages/settings.html", {"form": form}, status=400)


class SlaReportView(ManagerMixin, View):
    def get(self, request):
        days = request.GET.get("days", "30")
        days = int(days) if days.isdigit() and 1 <= int(days) <= 365 else 30
        report = sla_report(organization=request.organization, days=days)
        chart = {
            "labels": [b.label for b in report.by_agent],
            "met": [b.share_met or 0 for b in report.by_agent],
            "sources": [b.label for b in report.by_source],
            "source_met": [b.share_met or 0 for b in report.by_source],
        }
        return render(
            request,
            "messaging/pages/sla.html",
            {"report": report, "days": days, "chart": json.dumps(chart), "status_url": reverse("messaging:settings")},
        )
