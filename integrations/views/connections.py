"""The Integrations page: every connection with its health, connecting new ones, a mapping editor with a live
preview (htmx) for generic webhooks, recent raw payloads, and a test send.

Views parse input, call one service or selector, and render. Another organization's connection is a 404 (the
scoped manager never finds it). A new HMAC secret is rendered in that one response and never again.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin

from ..constants import ConnectionStatus, IntegrationProvider
from ..forms.connections import (
    ConnectionCreateForm,
    ConversionsSettingsForm,
    FacebookConnectForm,
    HostedFormSettingsForm,
    LinkedInConnectForm,
    MappingForm,
    defaults_as_text,
    mapping_as_text,
)
from ..models import IntegrationConnection
from ..providers.generic import MAPPABLE_FIELDS, payload_paths
from ..selectors import connections as selectors
from ..selectors.conversions import connection_conversion_events
from ..services import connections as services
from ..services import conversions, hosted_forms, inbound

RECENT_PAYLOADS = 20
TEMPLATES = "integrations/connections"


def inbound_url(request, connection: IntegrationConnection) -> str:
    names = {IntegrationProvider.WEBHOOK: "webhook-inbound", IntegrationProvider.GOOGLE_ADS: "webhook-google-ads"}
    if connection.provider not in names:
        return ""
    return request.build_absolute_uri(reverse(names[connection.provider], args=[connection.public_token]))


class ConnectionPageMixin(OrganizationRequiredMixin):
    required_role = Role.ADMIN

    def get_connection(self, pk: int) -> IntegrationConnection:
        return get_object_or_404(selectors.integration_connections(), pk=pk)


class ConnectionListView(ConnectionPageMixin, View):
    def render_page(self, request, create_form=None, facebook_form=None, linkedin_form=None, status=200):
        return render(
            request,
            f"{TEMPLATES}/list.html",
            {
                "connections": selectors.integration_connections(),
                "create_form": create_form or ConnectionCreateForm(),
                "facebook_form": facebook_form or FacebookConnectForm(),
                "linkedin_form": linkedin_form or LinkedInConnectForm(),
                "facebook_webhook_url": request.build_absolute_uri(reverse("webhook-facebook")),
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = ConnectionCreateForm(request.POST)
        if form.is_valid():
            try:
                connection = services.connection_create(
                    organization=request.organization, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, f"{connection.name} is ready: point your tool at the URL below.")
                return redirect("integrations:connection_detail", pk=connection.pk)
        return self.render_page(request, create_form=form, status=400)


class FacebookConnectView(ConnectionPageMixin, View):
    def post(self, request):
        form = FacebookConnectForm(request.POST)
        if form.is_valid():
            try:
                connection = inbound.facebook_page_connect(
                    organization=request.organization, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                form.add_error("page_access_token" if error.field else None, error.message)
            else:
                messages.success(request, f"Facebook page {connection.name} connected: new leads arrive in seconds.")
                return redirect("integrations:connection_detail", pk=connection.pk)
        return ConnectionListView().render_page(request, facebook_form=form, status=400)


def _detail_context(request, connection: IntegrationConnection, **extra):
    submissions = selectors.connection_submissions(connection=connection)[:RECENT_PAYLOADS]
    context = {
        "connection": connection,
        "inbound_url": inbound_url(request, connection),
        "submissions": submissions,
        "has_secret": bool(connection.credential("hmac_secret")),
        "google_key": connection.credential("google_key")
        if connection.provider == IntegrationProvider.GOOGLE_ADS
        else "",
        "is_disconnected": connection.status == ConnectionStatus.DISCONNECTED,
        **extra,
    }
    if connection.provider == IntegrationProvider.FACEBOOK:
        options = connection.settings
        context.setdefault(
            "conversions_form",
            ConversionsSettingsForm(
                initial={
                    "conversions_enabled": bool(options.get("conversions_enabled")),
                    "dataset_id": options.get("dataset_id", ""),
                    "conversions_stages": ", ".join(options.get("conversions_stages") or []),
                }
            ),
        )
        context["has_conversions_token"] = bool(connection.credential("conversions_access_token"))
        context["conversion_events"] = connection_conversion_events(connection=connection)[:RECENT_PAYLOADS]
    if connection.provider == IntegrationProvider.FORM:
        form_options = hosted_forms.hosted_form_options(connection)
        context["hosted_form_url"] = request.build_absolute_uri(
            reverse("integrations:hosted_form", args=[connection.public_token])
        )
        keys = ("title", "fields", "consent_text", "thank_you_url", "category_fields")
        context.setdefault(
            "hosted_form_settings",
            HostedFormSettingsForm(
                initial={
                    **{key: form_options[key] for key in keys},
                    "campaign": hosted_forms.hosted_form_campaign(connection),
                }
            ),
        )
    if connection.provider == IntegrationProvider.WEBHOOK:
        options = connection.settings
        context.setdefault(
            "mapping_form",
            MappingForm(
                initial={
                    "mapping": mapping_as_text(options.get("mapping") or {}),
                    "defaults": defaults_as_text(options.get("defaults") or {}),
                }
            ),
        )
        context["mappable_fields"] = MAPPABLE_FIELDS
        context.update(_preview_context(connection, options.get("mapping") or {}, options.get("defaults") or {}))
    return context


def _preview_context(connection, mapping, defaults) -> dict:
    last = selectors.connection_last_payload(connection=connection)
    preview = inbound.generic_mapping_preview(
        connection=connection, submission=last, mapping=mapping, defaults=defaults
    )
    return {
        "last_payload": last,
        "preview": preview,
        "payload_paths": payload_paths(preview.payload) if isinstance(preview.payload, dict) else [],
        "preview_fields_json": json.dumps(preview.fields, indent=2, default=str, ensure_ascii=False),
    }


class ConnectionDetailView(ConnectionPageMixin, View):
    def get(self, request, pk: int):
        connection = self.get_connection(pk)
        return render(request, f"{TEMPLATES}/detail.html", _detail_context(request, connection))


class ConnectionMappingView(ConnectionPageMixin, View):
    """Save the mapping (POST) or, from htmx, only preview it against the last payload."""

    def post(self, request, pk: int):
        connection = self.get_connection(pk)
        form = MappingForm(request.POST)
        preview_only = request.POST.get("preview") == "1"
        if form.is_valid() and not preview_only:
            try:
                services.connection_mapping_set(
                    connection=connection,
                    mapping=form.cleaned_data["mapping"],
                    defaults=form.cleaned_data["defaults"],
                    actor=request.user,
                    request=request,
                )
            except ServiceError as error:
                form.add_error("mapping", error.message)
            else:
                messages.success(request, "Mapping saved. Payloads from now on use it; replay rejected ones to retry.")
                return redirect("integrations:connection_detail", pk=connection.pk)
        if preview_only:
            if form.is_valid():
                context = _preview_context(connection, form.cleaned_data["mapping"], form.cleaned_data["defaults"])
            else:
                context = {"preview_form_errors": form.errors}
            return render(request, f"{TEMPLATES}/partials/preview.html", {"connection": connection, **context})
        return render(
            request, f"{TEMPLATES}/detail.html", _detail_context(request, connection, mapping_form=form), status=400
        )


class ConnectionSecretView(ConnectionPageMixin, View):
    def post(self, request, pk: int):
        connection = self.get_connection(pk)
        if connection.provider != IntegrationProvider.WEBHOOK:
            return redirect("integrations:connection_detail", pk=connection.pk)
        enabled = request.POST.get("enabled") == "1"
        secret = services.connection_webhook_secret_set(
            connection=connection, enabled=enabled, actor=request.user, request=request
        )
        if not enabled:
            messages.success(request, "Signing turned off: the URL's token alone authenticates requests.")
            return redirect("integrations:connection_detail", pk=connection.pk)
        # Rendered, not redirected: the secret exists in this response only.
        return render(request, f"{TEMPLATES}/detail.html", _detail_context(request, connection, new_secret=secret))


class ConnectionSendTestView(ConnectionPageMixin, View):
    def post(self, request, pk: int):
        connection = self.get_connection(pk)
        result = inbound.connection_send_test(connection=connection)
        (messages.success if result.ok else messages.error)(request, result.message)
        return redirect("integrations:connection_detail", pk=connection.pk)


class ConnectionDisconnectView(ConnectionPageMixin, View):
    def post(self, request, pk: int):
        connection = self.get_connection(pk)
        services.connection_disconnect(connection=connection, actor=request.user, request=request)
        messages.success(request, f"{connection.name} disconnected: its URL now answers 404.")
        return redirect("integrations:list")


class ConnectionReconnectView(ConnectionPageMixin, View):
    def post(self, request, pk: int):
        connection = self.get_connection(pk)
        if connection.provider == IntegrationProvider.FACEBOOK and not connection.credential("page_access_token"):
            messages.error(request, "Paste a new page access token to reconnect this page.")
            return redirect("integrations:list")
        services.connection_reconnect(connection=connection, actor=request.user, request=request)
        messages.success(request, f"{connection.name} is receiving again.")
        return redirect("integrations:connection_detail", pk=connection.pk)


class ConnectionHostedFormView(ConnectionPageMixin, View):
    def post(self, request, pk: int):
        connection = self.get_connection(pk)
        form = HostedFormSettingsForm(request.POST)
        if form.is_valid():
            try:
                hosted_forms.hosted_form_configure(
                    connection=connection, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, "Form saved.")
                return redirect("integrations:connection_detail", pk=connection.pk)
        context = _detail_context(request, connection, hosted_form_settings=form)
        return render(request, f"{TEMPLATES}/detail.html", context, status=400)


class HostedFormCategoryFieldsView(ConnectionPageMixin, View):
    """The form builder's category fields for the campaign just chosen (htmx swaps them in)."""

    def get(self, request):
        form = HostedFormSettingsForm(initial={"campaign": request.GET.get("campaign", "")})
        return render(request, f"{TEMPLATES}/partials/category_field_choices.html", {"hosted_form_settings": form})


class LinkedInConnectView(ConnectionPageMixin, View):
    def post(self, request):
        form = LinkedInConnectForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            account = data["sponsored_account"].rsplit(":", 1)[-1]
            connection = services.connection_create(
                organization=request.organization,
                provider=IntegrationProvider.LINKEDIN,
                name=data["name"] or f"LinkedIn ad account {account}",
                credentials={"access_token": data["access_token"]},
                settings={"sponsored_account": account},
                external_account_id=account,
                actor=request.user,
                request=request,
            )
            messages.success(request, "LinkedIn connected: its leads are pulled every 15 minutes.")
            return redirect("integrations:connection_detail", pk=connection.pk)
        return ConnectionListView().render_page(request, linkedin_form=form, status=400)


class ConnectionConversionsView(ConnectionPageMixin, View):
    """Turn sending lead stages to Meta's Conversions API on or off for a Facebook page."""

    def post(self, request, pk: int):
        connection = self.get_connection(pk)
        form = ConversionsSettingsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                conversions.connection_conversions_configure(
                    connection=connection,
                    enabled=data["conversions_enabled"],
                    dataset_id=data["dataset_id"],
                    stages=data["conversions_stages"],
                    access_token=data["access_token"],
                    actor=request.user,
                    request=request,
                )
            except ServiceError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                state = "on" if connection.settings.get("conversions_enabled") else "off"
                messages.success(request, f"Sending lead stages to Meta is {state}.")
                return redirect("integrations:connection_detail", pk=connection.pk)
        context = _detail_context(request, connection, conversions_form=form)
        return render(request, f"{TEMPLATES}/detail.html", context, status=400)
