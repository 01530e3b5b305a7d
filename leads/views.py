"""The lead pages: list, board, detail, add, merge, CSV import and export.

Views parse input, call one selector or service, and render. Every lead is looked up through
``leads_visible_to``, so another agent's lead (or another organization's) is a 404, exactly as in the API.
Writes that change one part of the detail page answer htmx with that part (and the timeline, out of band);
without JavaScript the same forms post, redirect and flash a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from accounts.constants import Role
from campaigns.forms_schema import campaign_fields_form, split_intake_errors
from campaigns.intake import campaign_lead_intake, distribution_summary
from campaigns.models import Campaign
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin

from .constants import Grade, ImportStatus, LeadSource, SubmissionStatus
from .exports import export_filename, stream_leads_csv
from .filters import LeadFilter
from .forms import (
    BulkActionForm,
    ImportMappingForm,
    ImportUploadForm,
    LeadAddForm,
    LeadEditForm,
    LostForm,
    MergeForm,
    NoteForm,
    OwnerForm,
    StageForm,
    TagsForm,
    WonForm,
    add_errors,
    lead_filter_params,
)
from .intake.normalize import NormalizationError
from .intake.pipeline import lead_intake
from .models import Lead, LeadImport, LeadNote
from .page_selectors import (
    BOARD_COLUMN_SIZE,
    assignable_members,
    board_columns,
    leads_page,
    recent_imports,
    recent_tags,
)
from .selectors import lead_timeline, leads_visible_to, pipeline_stages, search_plan
from .services import imports as import_services
from .services.leads import (
    lead_add_note,
    lead_assign,
    lead_change_stage,
    lead_delete,
    lead_mark_lost,
    lead_mark_won,
    lead_set_tags,
    lead_update,
    leads_bulk_action,
)
from .services.merge import MERGE_FIELDS, leads_merge, merge_preview

# What services raise when they refuse input: a business rule, field validation, or tag parsing.
REFUSALS = (ServiceError, ValidationError, NormalizationError)
RESULTS_TARGET = "lead-results"
TIMELINE_LENGTH = 100
MAX_MERGE = 20


def refusal_message(error: Exception) -> str:
    if isinstance(error, ServiceError):
        return error.message
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)


def form_error_text(form) -> str:
    return " ".join(message for errors in form.errors.values() for message in errors)


def split_tags(text: str) -> list[str]:
    return [part for part in (text or "").split(",") if part.strip()]


class LeadPageMixin(OrganizationRequiredMixin):
    """Reads need a viewer; working a lead needs an agent (their own leads) — subclasses raise the bar."""

    def visible_leads(self):
        return leads_visible_to(self.request.membership)

    def get_lead(self, pk: int, *related: str) -> Lead:
        return get_object_or_404(self.visible_leads().select_related("stage", "owner", *related), pk=pk)

    def has_role(self, role: str) -> bool:
        return self.request.membership.has_role(role)


def _htmx_partial(request, target: str) -> bool:
    """An htmx swap of ``target`` (a history restore wants the whole page instead)."""
    return bool(request.htmx) and not request.htmx.history_restore_request and request.htmx.target == target


# List ------------------------------------------------------------------------------------------------------------


def list_results_context(request, query: QueryDict) -> dict:
    """The table, the bulk bar and the pager for ``query`` (the list's query string)."""
    visible = leads_visible_to(request.membership)
    filterset = LeadFilter(lead_filter_params(query), queryset=visible, request=request)
    with search_plan(query.get("q", ""), tags=query.get("tag", "")):
        page = leads_page(filterset.qs.select_related("stage", "owner"), cursor=query.get("cursor"))
    filtered = any(value.strip() for name, values in query.lists() if name != "cursor" for value in values)
    first, older = query.copy(), query.copy()
    first.pop("cursor", None)
    if page.next_cursor:
        older["cursor"] = page.next_cursor
    can_bulk = request.membership.has_role(Role.MANAGER)
    return {
        "page": page,
        "leads": page.leads,
        "filter_errors": filterset.form.errors,
        "is_filtered": filtered,
        # New leads are pushed into the table only where they belong: the first page with no filter.
        "live": page.is_first and not filtered,
        # Agents see only their own leads: the live script skips arrivals routed to someone else.
        "live_owner": "" if can_bulk else request.user.pk,
        "query": query.urlencode(),
        "first_query": first.urlencode(),
        "older_query": older.urlencode() if page.next_cursor else "",
        "can_bulk": can_bulk,
        "can_export": can_bulk,
        "stages": pipeline_stages(),
        "members": list(assignable_members()) if can_bulk else [],
        "bulk_actions": BulkActionForm.ACTION_LABELS,
    }


class LeadListView(LeadPageMixin, View):
    """Newest first, filtered by the same FilterSet as the API, one keyset page at a time."""

    def get(self, request):
        context = list_results_context(request, request.GET)
        if _htmx_partial(request, RESULTS_TARGET):
            response = render(request, "leads/partials/results.html", context)
        else:
            context.update(self.filter_bar_context(request.GET))
            response = render(request, "leads/pages/list.html", context)
        # The same URL answers a page or a fragment: caches must keep them apart.
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        return response

    def filter_bar_context(self, query: QueryDict) -> dict:
        return {
            "selected": {name: query.get(name, "") for name in LeadFilter.base_filters},
            "sources": LeadSource.choices,
            "grades": Grade.choices,
            "tags": recent_tags(self.visible_leads()),
            "can_filter_owner": self.has_role(Role.MANAGER),
        }


class LeadRowView(LeadPageMixin, View):
    """One table row, fetched by the list page when a lead arrives or changes live."""

    def get(self, request, pk: int):
        lead = self.get_lead(pk)
        return render(
            request,
            "leads/partials/lead_row.html",
            {"lead": lead, "can_bulk": self.has_role(Role.MANAGER), "highlight": True},
        )


class LeadBulkView(LeadPageMixin, View):
    required_role = Role.MANAGER

    def post(self, request):
        form = BulkActionForm(request.POST)
        query = QueryDict(request.POST.get("query", ""))
        notice = error = None
        if form.is_valid():
            action = form.cleaned_data["action"]
            try:
                count = leads_bulk_action(
                    organization=request.organization,
                    queryset=self.visible_leads(),
                    actor=request.user,
                    action=action,
                    ids=form.cleaned_data["ids"],
                    value=form.value(),
                    request=request,
                )
            except REFUSALS as exc:
                error = refusal_message(exc)
            else:
                notice = f"{BulkActionForm.ACTION_LABELS[action]}: {count} lead{'s' if count != 1 else ''} done."
        else:
            error = form_error_text(form)
        if request.htmx:
            context = list_results_context(request, query)
            context.update(notice=notice, error=error)
            return render(request, "leads/partials/results.html", context)
        if error:
            messages.error(request, error)
        else:
            messages.success(request, notice)
        return redirect(f"{reverse('leads:list')}?{query.urlencode()}")


class LeadExportView(LeadPageMixin, View):
    required_role = Role.MANAGER

    def get(self, request):
        filterset = LeadFilter(lead_filter_params(request.GET), queryset=self.visible_leads(), request=request)
        queryset = filterset.qs.order_by("-received_at", "-id")
        response = StreamingHttpResponse(stream_leads_csv(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(request.organization)}"'
        return response


# Board -----------------------------------------------------------------------------------------------------------


class LeadBoardView(LeadPageMixin, View):
    def get(self, request):
        # Duplicates are worked through their original, so they stay off the board.
        queryset = self.visible_leads().filter(duplicate_of__isnull=True)
        filterset = LeadFilter(lead_filter_params(request.GET), queryset=queryset, request=request)
        return render(
            request,
            "leads/pages/board.html",
            {
                "columns": board_columns(filterset.qs, pipeline_stages()),
                "per_column": BOARD_COLUMN_SIZE,
                "q": request.GET.get("q", ""),
                "mine": request.GET.get("owner") == "me",
                "can_work": self.has_role(Role.AGENT),
                "can_filter_owner": self.has_role(Role.MANAGER),
            },
        )


class LeadMoveView(LeadPageMixin, View):
    """A card dropped on another column. Answers JSON for the board's script, which puts the card back on error."""

    required_role = Role.AGENT

    def post(self, request, pk: int):
        lead = self.get_lead(pk)
        form = StageForm(request.POST)
        if not form.is_valid():
            return JsonResponse({"error": "Pick one of your pipeline's stages."}, status=400)
        try:
            lead = lead_change_stage(lead=lead, stage=form.cleaned_data["stage"], actor=request.user)
        except REFUSALS as exc:
            return JsonResponse({"error": refusal_message(exc)}, status=400)
        return JsonResponse({"id": lead.pk, "stage": lead.stage_id, "stage_name": lead.stage.name})


# Detail ----------------------------------------------------------------------------------------------------------


class LeadDetailView(LeadPageMixin, View):
    template_name = "leads/pages/detail.html"

    def get(self, request, pk: int):
        return render(request, self.template_name, self.detail_context(self.get_lead(pk, "duplicate_of")))

    def detail_context(self, lead: Lead, **overrides) -> dict:
        visible = self.visible_leads()
        can_manage = self.has_role(Role.MANAGER)
        original = None
        if lead.duplicate_of_id:
            # An agent may own the duplicate but not the original: show it only when they could open it.
            original = lead.duplicate_of if visible.filter(pk=lead.duplicate_of_id).exists() else None
        won_initial = {"amount": lead.won_amount if lead.won_amount is not None else lead.deal_value}
        context = {
            "lead": lead,
            "original": original,
            "duplicates": list(visible.filter(duplicate_of=lead).order_by("-received_at", "-id")[:MAX_MERGE]),
            "stages": pipeline_stages(),
            "members": list(assignable_members()) if can_manage else [],
            "notes": LeadNote.objects.filter(lead=lead).select_related("author").order_by("-created_at", "-id")[:50],
            "timeline": lead_timeline(lead)[:TIMELINE_LENGTH],
            "custom_fields": sorted((lead.custom or {}).items()),
            "can_work": self.has_role(Role.AGENT),
            "can_manage": can_manage,
            "edit_form": LeadEditForm.for_lead(lead),
            "note_form": NoteForm(),
            "tags_form": TagsForm(),
            "won_form": WonForm(initial=won_initial, prefix="won"),
            "lost_form": LostForm(initial={"reason": lead.lost_reason}, prefix="lost"),
        }
        context.update(overrides)
        return context


class LeadActionView(LeadDetailView):
    """A POST that changes one thing on a lead. Subclasses implement ``act`` → (error or None, success text)."""

    required_role = Role.AGENT
    http_method_names = ["post"]
    section_template: str | None = None

    def post(self, request, pk: int):
        lead = self.get_lead(pk)
        error, success, extra = self.act(lead)
        lead = self.get_lead(pk, "duplicate_of")  # services may have changed the stage, the owner, the tags …
        if request.htmx and self.section_template:
            context = {
                "lead": lead,
                "error": error,
                "saved": error is None,
                "timeline": lead_timeline(lead)[:TIMELINE_LENGTH],
                "oob_timeline": True,
                "can_work": self.has_role(Role.AGENT),
                "can_manage": self.has_role(Role.MANAGER),
                **self.section_context(lead),
                **extra,
            }
            return render(request, self.section_template, context)
        if error:
            messages.error(request, error)
        else:
            messages.success(request, success)
        return redirect("leads:detail", pk=lead.pk)

    def act(self, lead: Lead) -> tuple[str | None, str, dict]:
        raise NotImplementedError

    def section_context(self, lead: Lead) -> dict:
        return {}


class LeadStageView(LeadActionView):
    section_template = "leads/partials/stage_form.html"

    def act(self, lead):
        form = StageForm(self.request.POST)
        if not form.is_valid():
            return "Pick one of your pipeline's stages.", "", {}
        try:
            lead_change_stage(lead=lead, stage=form.cleaned_data["stage"], actor=self.request.user)
        except REFUSALS as exc:
            return refusal_message(exc), "", {}
        return None, f"Moved to {form.cleaned_data['stage'].name}.", {}

    def section_context(self, lead):
        return {"stages": pipeline_stages()}


class LeadOwnerView(LeadActionView):
    required_role = Role.MANAGER
    section_template = "leads/partials/owner_form.html"

    def act(self, lead):
        form = OwnerForm(self.request.POST)
        if not form.is_valid():
            return "Pick a member of this organization.", "", {}
        owner = form.chosen_owner()
        try:
            lead_assign(lead=lead, owner=owner, actor=self.request.user)
        except REFUSALS as exc:
            return refusal_message(exc), "", {}
        return None, f"Assigned to {owner.display_name}." if owner else "Back in the unassigned queue.", {}

    def section_context(self, lead):
        return {"members": list(assignable_members())}


class LeadTagsView(LeadActionView):
    section_template = "leads/partials/tags.html"

    def act(self, lead):
        form = TagsForm(self.request.POST)
        if not form.is_valid():
            return form_error_text(form), "", {"tags_form": form}
        remove = form.cleaned_data["remove"]
        try:
            lead_set_tags(
                lead=lead,
                actor=self.request.user,
                add=split_tags(form.cleaned_data["add"]),
                remove=[remove] if remove else [],
            )
        except REFUSALS as exc:
            return refusal_message(exc), "", {"tags_form": form}
        return None, "Tags saved.", {"tags_form": TagsForm()}


class LeadNoteView(LeadActionView):
    section_template = "leads/partials/notes.html"

    def act(self, lead):
        form = NoteForm(self.request.POST)
        if not form.is_valid():
            return form_error_text(form), "", {"note_form": form}
        try:
            lead_add_note(lead=lead, author=self.request.user, body=form.cleaned_data["body"])
        except REFUSALS as exc:
            add_errors(form, exc)
            return refusal_message(exc), "", {"note_form": form}
        return None, "Note added.", {"note_form": NoteForm()}

    def section_context(self, lead):
        return {
            "notes": LeadNote.objects.filter(lead=lead).select_related("author").order_by("-created_at", "-id")[:50]
        }


class LeadFormView(LeadDetailView):
    """A whole-page form on the detail page: redirect on success, the page again with the form's errors if not."""

    required_role = Role.AGENT
    http_method_names = ["post"]
    form_class: type
    form_key: str
    prefix: str | None = None

    def post(self, request, pk: int):
        lead = self.get_lead(pk, "duplicate_of")
        form = self.build_form(lead)
        if form.is_valid():
            try:
                success = self.save(lead, form)
            except REFUSALS as exc:
                add_errors(form, exc)
            else:
                messages.success(request, success)
                return redirect("leads:detail", pk=lead.pk)
        lead = self.get_lead(pk, "duplicate_of")  # unchanged in the database; drop any half-applied attributes
        return render(request, self.template_name, self.detail_context(lead, **{self.form_key: form}), status=400)

    def build_form(self, lead):
        return self.form_class(self.request.POST, prefix=self.prefix)

    def save(self, lead, form) -> str:
        raise NotImplementedError


class LeadEditView(LeadFormView):
    form_key = "edit_form"

    def build_form(self, lead):
        return LeadEditForm.for_lead(lead, self.request.POST)

    def save(self, lead, form):
        changes = form.changes()
        if changes:
            lead_update(lead=lead, actor=self.request.user, data=changes)
            return "Details saved."
        return "Nothing changed."

    def detail_context(self, lead, **overrides):
        return super().detail_context(lead, edit_open=True, **overrides)


class LeadWonView(LeadFormView):
    form_class = WonForm
    form_key = "won_form"
    prefix = "won"

    def save(self, lead, form):
        lead_mark_won(
            lead=lead, actor=self.request.user, amount=form.cleaned_data["amount"], won_on=form.cleaned_data["won_on"]
        )
        return "Marked won."


class LeadLostView(LeadFormView):
    form_class = LostForm
    form_key = "lost_form"
    prefix = "lost"

    def save(self, lead, form):
        lead_mark_lost(lead=lead, actor=self.request.user, reason=form.cleaned_data["reason"])
        return "Marked lost."


class LeadDeleteView(LeadPageMixin, View):
    required_role = Role.MANAGER

    def post(self, request, pk: int):
        lead = self.get_lead(pk)
        name = lead.display_name
        lead_delete(lead=lead, actor=request.user, request=request)
        messages.success(request, f"{name} was deleted.")
        return redirect("leads:list")


# Merge -----------------------------------------------------------------------------------------------------------


def _ids(values: list[str]) -> list[int]:
    ids = []
    for value in values:
        ids += [int(part) for part in value.split(",") if part.strip().isdigit()]
    return list(dict.fromkeys(ids))


class LeadMergeView(LeadPageMixin, View):
    """Choose, field by field, what the merged lead keeps; the others are folded into it."""

    required_role = Role.MANAGER
    template_name = "leads/pages/merge.html"

    def leads(self, request, pk: int):
        primary = self.get_lead(pk)
        ids = [i for i in _ids(request.GET.getlist("with") + request.POST.getlist("with")) if i != primary.pk]
        if not ids:
            ids = list(self.visible_leads().filter(duplicate_of=primary).values_list("pk", flat=True)[:MAX_MERGE])
        if len(ids) > MAX_MERGE:
            ids = ids[:MAX_MERGE]
        duplicates = list(self.visible_leads().select_related("stage", "owner").filter(pk__in=ids).order_by("pk"))
        if len(duplicates) != len(ids):
            raise Http404("One of these leads does not exist.")  # gone, or not one this member may see
        return primary, duplicates

    def render_page(self, request, primary, duplicates, form=None, error=None, status=200):
        context = {
            "lead": primary,
            "duplicates": duplicates,
            "error": error,
            "with": ",".join(str(d.pk) for d in duplicates),
        }
        if duplicates:
            preview = merge_preview(primary=primary, duplicates=duplicates)
            leads = [primary, *duplicates]
            form = form or MergeForm(leads=leads, preview=preview)
            context.update(form=form, leads=leads, rows=self.rows(form, leads), preview=preview)
        return render(request, self.template_name, context, status=status)

    @staticmethod
    def rows(form, leads):
        rows = []
        for name in MERGE_FIELDS:
            radios = list(form[name].subwidgets)
            cells = [
                {"lead": lead, "value": getattr(lead, name), "radio": radio}
                for lead, radio in zip(leads, radios, strict=True)
            ]
            if any(cell["value"] not in (None, "", False) for cell in cells):
                label = name.replace("_", " ").capitalize().replace("Utm ", "UTM ")
                rows.append({"name": name, "label": label, "cells": cells})
        return rows

    def get(self, request, pk: int):
        primary, duplicates = self.leads(request, pk)
        return self.render_page(request, primary, duplicates)

    def post(self, request, pk: int):
        primary, duplicates = self.leads(request, pk)
        if not duplicates:
            return self.render_page(request, primary, duplicates, error="Choose at least one other lead.", status=400)
        preview = merge_preview(primary=primary, duplicates=duplicates)
        form = MergeForm(request.POST, leads=[primary, *duplicates], preview=preview)
        if form.is_valid():
            try:
                merged = leads_merge(
                    primary=primary,
                    duplicates=duplicates,
                    actor=request.user,
                    choices=form.choices(),
                    request=request,
                )
            except REFUSALS as exc:
                return self.render_page(request, primary, duplicates, form, refusal_message(exc), status=400)
            messages.success(
                request, f"Merged {len(duplicates)} lead{'s' if len(duplicates) != 1 else ''} into this one."
            )
            return redirect("leads:detail", pk=merged.pk)
        return self.render_page(request, primary, duplicates, form, form_error_text(form), status=400)


# Add -------------------------------------------------------------------------------------------------------------


class LeadAddView(LeadPageMixin, View):
    """A lead typed in by hand goes through the intake pipeline like any other source (dedupe, scoring, routing);
    one added to a campaign is checked against its category and distributed, exactly as the supplier API's."""

    required_role = Role.AGENT
    template_name = "leads/pages/add.html"

    def build_form(self, data=None) -> LeadAddForm:
        return LeadAddForm(data, can_choose_campaign=self.has_role(Role.MANAGER))

    def render_page(self, request, form, category_form=None, status=200):
        return render(request, self.template_name, {"form": form, "category_form": category_form}, status=status)

    def get(self, request):
        return self.render_page(request, self.build_form())

    def post(self, request):
        form = self.build_form(request.POST)
        form_is_valid = form.is_valid()
        campaign = form.chosen_campaign()
        category_form = campaign_fields_form(campaign, request.POST)
        if not form_is_valid or (category_form is not None and not category_form.is_valid()):
            return self.render_page(request, form, category_form, status=400)
        payload = form.payload()
        distribution = None
        if campaign is None:
            outcome = lead_intake(
                organization=request.organization, source=LeadSource.MANUAL, payload=payload, actor=request.user
            )
        else:
            payload["custom"] = category_form.custom_values() if category_form is not None else {}
            result = campaign_lead_intake(
                organization=request.organization,
                campaign=campaign,
                source=LeadSource.MANUAL,
                payload=payload,
                actor=request.user,
            )
            outcome, distribution = result.outcome, result.distribution
        if outcome.status in (SubmissionStatus.REJECTED, SubmissionStatus.FAILED) or outcome.lead is None:
            custom_errors, other_errors = split_intake_errors(
                outcome.errors or {"non_field_errors": ["The lead could not be added."]}
            )
            add_errors(form, other_errors)
            add_errors(category_form if category_form is not None else form, custom_errors)
            return self.render_page(request, form, category_form, status=400)
        lead = outcome.lead
        if outcome.status == SubmissionStatus.DUPLICATE and outcome.original is not None:
            original = outcome.original
            messages.warning(
                request,
                f"Saved as a duplicate of {original.display_name} (lead #{original.pk}), "
                "who arrived with the same email or phone.",
            )
        else:
            messages.success(request, f"{lead.display_name} was added. {distribution_summary(distribution)}".strip())
        if self.visible_leads().filter(pk=lead.pk).exists():
            return redirect("leads:detail", pk=lead.pk)
        # Routing gave it to someone else: an agent cannot open it, so say where it went.
        messages.info(request, "It was routed to a teammate (or the unassigned queue).")
        return redirect("leads:list")


class LeadAddFieldsView(LeadPageMixin, View):
    """The add page's category fieldset for the campaign just chosen (htmx swaps it in)."""

    required_role = Role.MANAGER

    def get(self, request):
        value = request.GET.get("campaign", "")
        campaign = (
            get_object_or_404(Campaign.objects.select_related("category"), pk=int(value)) if value.isdigit() else None
        )
        return render(
            request, "campaigns/partials/category_fields.html", {"category_form": campaign_fields_form(campaign)}
        )


# Imports ---------------------------------------------------------------------------------------------------------


class ImportMixin(LeadPageMixin):
    required_role = Role.MANAGER

    def get_import(self, pk: int, *, with_content: bool = False) -> LeadImport:
        queryset = LeadImport.objects.all() if with_content else LeadImport.objects.defer("content")
        return get_object_or_404(queryset, pk=pk)


class ImportUploadView(ImportMixin, View):
    template_name = "leads/pages/imports.html"

    def render_page(self, request, form, status=200):
        return render(request, self.template_name, {"form": form, "imports": recent_imports()}, status=status)

    def get(self, request):
        return self.render_page(request, ImportUploadForm())

    def post(self, request):
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                lead_import = import_services.lead_import_upload(
                    organization=request.organization, actor=request.user, filename=upload.name, content=upload.read()
                )
            except REFUSALS as exc:
                add_errors(form, exc)
            else:
                return redirect("leads:import_map", pk=lead_import.pk)
        return self.render_page(request, form, status=400)


class ImportMapView(ImportMixin, View):
    template_name = "leads/pages/import_map.html"

    def render_page(self, request, lead_import, form, status=200):
        preview = import_services.import_preview(lead_import)
        headers = lead_import.headers
        return render(
            request,
            self.template_name,
            {
                "lead_import": lead_import,
                "form": form,
                # Each column beside its select with its first values, and the first rows as a table.
                "columns": [
                    (field, [row.get(header, "") for row in preview])
                    for field, header in zip(form.column_fields(), headers, strict=True)
                ],
                "preview_rows": [[row.get(header, "") for header in headers] for row in preview],
            },
            status=status,
        )

    def get(self, request, pk: int):
        lead_import = self.get_import(pk, with_content=True)
        if lead_import.status != ImportStatus.UPLOADED:
            return redirect("leads:import_progress", pk=pk)
        return self.render_page(request, lead_import, ImportMappingForm(lead_import=lead_import))

    def post(self, request, pk: int):
        lead_import = self.get_import(pk, with_content=True)
        if lead_import.status != ImportStatus.UPLOADED:
            return redirect("leads:import_progress", pk=pk)  # a second click on "Import": it is already running
        form = ImportMappingForm(request.POST, lead_import=lead_import)
        if form.is_valid():
            try:
                import_services.lead_import_start(
                    lead_import=lead_import, mapping=form.mapping(), tags=split_tags(form.cleaned_data["tags"])
                )
            except REFUSALS as exc:
                add_errors(form, exc)
            else:
                return redirect("leads:import_progress", pk=pk)
        return self.render_page(request, lead_import, form, status=400)


class ImportProgressView(ImportMixin, View):
    def get(self, request, pk: int):
        lead_import = self.get_import(pk)
        if lead_import.status == ImportStatus.UPLOADED:
            return redirect("leads:import_map", pk=pk)
        return render(request, "leads/pages/import_progress.html", {"lead_import": lead_import})


class ImportStatusView(ImportMixin, View):
    """The progress fragment htmx polls every two seconds while the import runs (the websocket is faster)."""

    def get(self, request, pk: int):
        return render(request, "leads/partials/import_status.html", {"lead_import": self.get_import(pk)})


class ImportErrorsView(ImportMixin, View):
    def get(self, request, pk: int):
        lead_import = self.get_import(pk, with_content=False)
        response = HttpResponse(
            import_services.import_error_report(lead_import), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="import-{lead_import.pk}-errors.csv"'
        return response
