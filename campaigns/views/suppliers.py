"""Suppliers: settings, campaigns, ingest keys (shown once) and acceptance statistics."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from accounts.constants import Role
from accounts.services import api_key_revoke
from leadflow.exceptions import ServiceError

from .. import selectors
from ..forms import PERIODS, SupplierForm, SupplierKeyForm
from ..models import Campaign, Supplier, SupplierApiKey
from ..services import catalog
from .common import CampaignsPageMixin, add_errors, period_since

REFUSALS = (ServiceError, ValidationError)


def _supplier_data(form) -> tuple[dict, list]:
    data = dict(form.cleaned_data)
    return data, list(data.pop("campaigns", []))


class SupplierListView(CampaignsPageMixin, View):
    def render_page(self, request, form=None, status=200):
        period, since = period_since(request)
        suppliers = list(selectors.suppliers_with_keys())
        stats = selectors.supplier_statistics([s.pk for s in suppliers], since=since)
        rows = [(supplier, stats.get(supplier.pk, selectors.EMPTY_SUPPLIER_STATS)) for supplier in suppliers]
        return render(
            request,
            "campaigns/suppliers/list.html",
            {"rows": rows, "form": form or SupplierForm(), "period": period, "periods": PERIODS},
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = SupplierForm(request.POST)
        if form.is_valid():
            data, campaigns = _supplier_data(form)
            try:
                supplier = catalog.supplier_save(
                    supplier=Supplier(organization=request.organization),
                    data=data,
                    campaigns=campaigns,
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, f"Supplier {supplier.name} added: give it a key to post leads.")
                return redirect("campaigns:supplier_detail", pk=supplier.pk)
        return self.render_page(request, form=form, status=400)


class SupplierDetailView(CampaignsPageMixin, View):
    def get_supplier(self, pk: int) -> Supplier:
        return get_object_or_404(Supplier.objects.select_related("organization"), pk=pk)

    def render_page(self, request, supplier, form=None, key_form=None, new_key=None, status=200):
        period, since = period_since(request)
        overall = selectors.supplier_statistics([supplier.pk], since=since).get(
            supplier.pk, selectors.EMPTY_SUPPLIER_STATS
        )
        by_campaign = selectors.supplier_statistics([supplier.pk], since=since, by_campaign=True)
        campaigns = {c.pk: c for c in Campaign.objects.filter(pk__in=[key[1] for key in by_campaign])}
        return render(
            request,
            "campaigns/suppliers/detail.html",
            {
                "supplier": supplier,
                "stats": overall,
                "by_campaign": [(campaigns[key[1]], row) for key, row in by_campaign.items() if key[1] in campaigns],
                "keys": SupplierApiKey.objects.filter(supplier=supplier).select_related("api_key"),
                "form": form or SupplierForm(instance=supplier, initial={"campaigns": supplier.campaigns.all()}),
                "key_form": key_form or SupplierKeyForm(),
                "new_key": new_key,
                "period": period,
                "periods": PERIODS,
                "can_manage_keys": request.membership.has_role(Role.ADMIN),
            },
            status=status,
        )

    def get(self, request, pk: int):
        return self.render_page(request, self.get_supplier(pk))

    def post(self, request, pk: int):
        supplier = self.get_supplier(pk)
        form = SupplierForm(request.POST, instance=self.get_supplier(pk))
        if form.is_valid():
            data, campaigns = _supplier_data(form)
            try:
                catalog.supplier_save(
                    supplier=supplier, data=data, campaigns=campaigns, actor=request.user, request=request
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, "Supplier saved.")
                return redirect("campaigns:supplier_detail", pk=supplier.pk)
        return self.render_page(request, supplier, form=form, status=400)


class SupplierKeyCreateView(SupplierDetailView):
    required_role = Role.ADMIN

    def post(self, request, pk: int):
        supplier = self.get_supplier(pk)
        form = SupplierKeyForm(request.POST)
        if form.is_valid():
            try:
                api_key, raw_key = catalog.supplier_api_key_create(
                    supplier=supplier, name=form.cleaned_data["name"], actor=request.user, request=request
                )
            except ServiceError as error:
                add_errors(form, error)
            else:
                # Rendered, not redirected: the key exists in this response only.
                return self.render_page(request, supplier, new_key={"api_key": api_key, "key": raw_key}, status=201)
        return self.render_page(request, supplier, key_form=form, status=400)


class SupplierKeyRevokeView(CampaignsPageMixin, View):
    required_role = Role.ADMIN

    def post(self, request, pk: int):
        link = get_object_or_404(SupplierApiKey.objects.select_related("api_key", "supplier"), pk=pk)
        api_key_revoke(api_key=link.api_key, actor=request.user, request=request)
        messages.success(request, f"Key {link.api_key.display_prefix}… revoked: it can no longer post leads.")
        return redirect("campaigns:supplier_detail", pk=link.supplier_id)
