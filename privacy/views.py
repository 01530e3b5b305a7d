"""Settings → Privacy: find a person, download everything about them, erase them (after a typed confirmation), and
the organization's retention policy. Owners and admins only; each action is one service call, audited there."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin

from . import selectors, services
from .forms import EraseForm, PersonForm, RetentionPolicyForm
from .sources import as_json


def _form_error(form, error: ServiceError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


class PrivacyPageMixin(OrganizationRequiredMixin):
    required_role = Role.ADMIN

    def render_page(self, request, *, person_form=None, policy_form=None, found=None, status=200):
        policy = services.retention_policy_of(request.organization)
        return render(
            request,
            "privacy/settings.html",
            {
                "person_form": person_form or PersonForm(),
                "policy_form": policy_form or RetentionPolicyForm(instance=policy),
                "found": found,
            },
            status=status,
        )


class PrivacyView(PrivacyPageMixin, View):
    """GET with an email or phone shows what LeadFlow holds about the person, source by source."""

    def get(self, request):
        if not request.GET:
            return self.render_page(request)
        form = PersonForm(request.GET)
        if not form.is_valid():
            return self.render_page(request, person_form=form, status=400)
        try:
            target = selectors.person_target(organization=request.organization, **form.cleaned_data)
        except ServiceError as error:
            _form_error(form, error)
            return self.render_page(request, person_form=form, status=400)
        found = {"target": target, "counts": selectors.person_data_counts(target)}
        found["total"] = sum(count for _, _, count in found["counts"])
        return self.render_page(request, person_form=form, found=found)


class PrivacyExportView(PrivacyPageMixin, View):
    def post(self, request):
        form = PersonForm(request.POST)
        if form.is_valid():
            try:
                document = services.person_export(
                    organization=request.organization, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                _form_error(form, error)
            else:
                response = HttpResponse(as_json(document), content_type="application/json")
                stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
                response["Content-Disposition"] = (
                    f'attachment; filename="privacy-export-{request.organization.slug}-{stamp}.json"'
                )
                return response
        return self.render_page(request, person_form=form, status=400)


class PrivacyEraseView(PrivacyPageMixin, View):
    """GET: what will be erased and the confirmation form. POST: erase, once "erase" was typed."""

    template_name = "privacy/erase_confirm.html"

    def _context(self, request, form, *, email: str, phone: str) -> dict:
        target = selectors.person_target(organization=request.organization, email=email, phone=phone)
        return {"form": form, "target": target, "counts": selectors.person_data_counts(target)}

    def get(self, request):
        email, phone = request.GET.get("email", ""), request.GET.get("phone", "")
        try:
            context = self._context(
                request, EraseForm(initial={"email": email, "phone": phone}), email=email, phone=phone
            )
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("privacy:settings")
        return render(request, self.template_name, context)

    def post(self, request):
        form = EraseForm(request.POST)
        email, phone = request.POST.get("email", ""), request.POST.get("phone", "")
        if form.is_valid():
            try:
                changed = services.person_erase(
                    organization=request.organization, email=email, phone=phone, actor=request.user, request=request
                )
            except ServiceError as error:
                _form_error(form, error)
            else:
                summary = ", ".join(f"{count} {key.replace('_', ' ')}" for key, count in changed.items() if count)
                messages.success(request, f"Erased: {summary or 'nothing was found'}. The audit log records it.")
                return redirect("privacy:settings")
        try:
            context = self._context(request, form, email=email, phone=phone)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("privacy:settings")
        return render(request, self.template_name, context, status=400)


class RetentionPolicyView(PrivacyPageMixin, View):
    def post(self, request):
        form = RetentionPolicyForm(request.POST, instance=services.retention_policy_of(request.organization))
        if form.is_valid():
            try:
                services.retention_policy_update(
                    organization=request.organization, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                _form_error(form, error)
            else:
                messages.success(request, "Retention policy saved. It is applied every night.")
                return redirect("privacy:settings")
        return self.render_page(request, policy_form=form, status=400)
