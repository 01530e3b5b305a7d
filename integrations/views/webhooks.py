"""The Webhooks page: endpoints, their recent deliveries, replay and a test send.

Views parse input, call one service or selector, and render. Another organization's endpoint or delivery is a 404
(the scoped manager never finds it). A new or rotated secret is rendered in that one response and never again.
htmx swaps a delivery row for replay and test sends; without JavaScript the same forms post and redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin

from ..forms.webhooks import WebhookEndpointForm
from ..models import WebhookDelivery, WebhookEndpoint
from ..selectors import webhooks as selectors
from ..services import webhooks as services

RECENT_DELIVERIES = 25
TEMPLATES = "integrations/webhooks"


def _form_error(form, error: ServiceError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


class WebhookPageMixin(OrganizationRequiredMixin):
    required_role = Role.ADMIN

    def get_endpoint(self, pk: int) -> WebhookEndpoint:
        return get_object_or_404(selectors.webhook_endpoints(), pk=pk)


class WebhookEndpointListView(WebhookPageMixin, View):
    def render_page(self, request, form=None, new_secret=None, status=200):
        return render(
            request,
            f"{TEMPLATES}/list.html",
            {
                "endpoints": selectors.webhook_endpoints(),
                "form": form or WebhookEndpointForm(),
                "new_secret": new_secret,
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint = services.webhook_endpoint_create(
                    organization=request.organization, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                _form_error(form, error)
            else:
                return self.render_page(
                    request, new_secret={"endpoint": endpoint, "secret": endpoint.secret}, status=201
                )
        return self.render_page(request, form=form, status=400)


def _detail_page(request, endpoint: WebhookEndpoint, form=None, new_secret=None, status=200):
    initial = {name: getattr(endpoint, name) for name in ("url", "description", "events", "is_active")}
    return render(
        request,
        f"{TEMPLATES}/detail.html",
        {
            "endpoint": endpoint,
            "form": form or WebhookEndpointForm(initial=initial),
            "deliveries": selectors.webhook_deliveries(endpoint=endpoint)[:RECENT_DELIVERIES],
            "new_secret": new_secret,
        },
        status=status,
    )


class WebhookEndpointDetailView(WebhookPageMixin, View):
    def get(self, request, pk: int):
        return _detail_page(request, self.get_endpoint(pk))

    def post(self, request, pk: int):
        endpoint = self.get_endpoint(pk)
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                services.webhook_endpoint_update(
                    endpoint=endpoint, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                _form_error(form, error)
            else:
                messages.success(request, "Endpoint saved.")
                return redirect("integrations:webhook_detail", pk=endpoint.pk)
        return _detail_page(request, endpoint, form=form, status=400)


class WebhookRotateSecretView(WebhookPageMixin, View):
    def post(self, request, pk: int):
        endpoint = services.webhook_endpoint_rotate_secret(
            endpoint=self.get_endpoint(pk), actor=request.user, request=request
        )
        # Rendered, not redirected: the new secret exists in this response only.
        return _detail_page(request, endpoint, new_secret={"endpoint": endpoint, "secret": endpoint.secret})


class WebhookDeleteView(WebhookPageMixin, View):
    def post(self, request, pk: int):
        endpoint = self.get_endpoint(pk)
        services.webhook_endpoint_delete(endpoint=endpoint, actor=request.user, request=request)
        messages.success(request, f"Endpoint {endpoint.url} deleted; nothing more is sent to it.")
        return redirect("integrations:webhooks")


def _delivery_row(request, delivery: WebhookDelivery, status=200):
    delivery = selectors.webhook_deliveries().get(pk=delivery.pk)
    return render(request, f"{TEMPLATES}/partials/delivery_row.html", {"delivery": delivery}, status=status)


class WebhookSendTestView(WebhookPageMixin, View):
    def post(self, request, pk: int):
        endpoint = self.get_endpoint(pk)
        try:
            delivery = services.webhook_endpoint_send_test(endpoint=endpoint, actor=request.user, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("integrations:webhook_detail", pk=endpoint.pk)
        if request.htmx:
            return _delivery_row(request, delivery, status=201)
        messages.success(request, "Test event queued; its delivery is at the top of the list.")
        return redirect("integrations:webhook_detail", pk=endpoint.pk)


class WebhookDeliveryReplayView(WebhookPageMixin, View):
    def post(self, request, pk: int):
        delivery = get_object_or_404(WebhookDelivery, pk=pk)
        try:
            delivery = services.webhook_delivery_replay(delivery=delivery, actor=request.user, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            if request.htmx:
                return _delivery_row(request, delivery)
            messages.success(request, "Delivery queued again.")
        return redirect("integrations:webhook_detail", pk=delivery.endpoint_id)


class WebhookDeliveryRowView(WebhookPageMixin, View):
    """One delivery's row: htmx polls it while the delivery is pending."""

    def get(self, request, pk: int):
        return _delivery_row(request, get_object_or_404(WebhookDelivery, pk=pk))
