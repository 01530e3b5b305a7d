"""Buyers: settings, subscriptions, delivery methods, the wallet with its ledger, portal users and invites."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views import View

from accounts.constants import Role
from leadflow.exceptions import ServiceError

from .. import selectors
from ..forms import (
    BuyerForm,
    DeliveryMethodForm,
    FieldFilterFormSet,
    InviteForm,
    SubscriptionForm,
    WalletAdjustForm,
    WalletCreditForm,
)
from ..models import Buyer, BuyerInvite, BuyerPortalUser, DeliveryMethod, SaleDelivery
from ..services import catalog, deliveries, portal, wallets
from .common import CampaignsPageMixin, add_errors
from .market import FILTERS_PREFIX

REFUSALS = (ServiceError, ValidationError)
LEDGER_LENGTH = 50
RECENT_SALES = 20


class BuyerListView(CampaignsPageMixin, View):
    def render_page(self, request, form=None, status=200):
        buyers = (
            Buyer.objects.select_related("wallet")
            .annotate(
                subscription_count=Count("subscriptions", distinct=True),
                sales_today=Count(
                    "sales",
                    filter=Q(sales__created_at__gte=timezone.localtime().replace(hour=0, minute=0, second=0)),
                    distinct=True,
                ),
            )
            .order_by("name", "id")
        )
        invites = BuyerInvite.objects.filter(buyer__isnull=True).order_by("-created_at")[:20]
        return render(
            request,
            "campaigns/buyers/list.html",
            {"buyers": buyers, "form": form or BuyerForm(), "invites": invites, "invite_form": InviteForm()},
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = BuyerForm(request.POST)
        if form.is_valid():
            try:
                buyer = catalog.buyer_save(
                    buyer=Buyer(organization=request.organization),
                    data=form.cleaned_data,
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, f"Buyer {buyer.name} added: credit its wallet and subscribe it.")
                return redirect("campaigns:buyer_detail", pk=buyer.pk)
        return self.render_page(request, form=form, status=400)


class BuyerPageMixin(CampaignsPageMixin):
    def get_buyer(self, pk: int) -> Buyer:
        return get_object_or_404(Buyer.objects.select_related("wallet", "organization"), pk=pk)


def buyer_page(request, buyer: Buyer, *, status=200, new_secret=None, new_invite=None, **forms):
    """The buyer's page, with any form that failed re-rendered with its errors."""
    sales = list(selectors.buyer_sales(buyer)[:RECENT_SALES])
    deliveries_by_sale: dict[int, list] = {}
    for delivery in SaleDelivery.objects.filter(sale__in=sales).select_related("webhook_delivery"):
        deliveries_by_sale.setdefault(delivery.sale_id, []).append(delivery)
    context = {
        "buyer": buyer,
        "balance": selectors.buyer_balance(buyer),
        "ledger": selectors.buyer_ledger(buyer).select_related("actor")[:LEDGER_LENGTH],
        "subscriptions": buyer.subscriptions.select_related("campaign").order_by("campaign__name"),
        "methods": DeliveryMethod.objects.filter(buyer=buyer).select_related("webhook_endpoint"),
        "sales": [(sale, deliveries_by_sale.get(sale.pk, [])) for sale in sales],
        "portal_users": BuyerPortalUser.objects.filter(buyer=buyer).select_related("user"),
        "invites": BuyerInvite.objects.filter(buyer=buyer).order_by("-created_at")[:10],
        "recharges": buyer.auto_recharges.order_by("-created_at")[:5],
        "can_adjust": request.membership.has_role(Role.ADMIN),
        "new_secret": new_secret,
        "new_invite": new_invite,
        "form": forms.get("form") or BuyerForm(instance=buyer),
        "credit_form": forms.get("credit_form") or WalletCreditForm(),
        "adjust_form": forms.get("adjust_form") or WalletAdjustForm(),
        "method_form": forms.get("method_form") or DeliveryMethodForm(),
        "subscription_form": forms.get("subscription_form")
        or SubscriptionForm(initial={"buyer": buyer.pk}, fixed="buyer"),
        "filters": forms.get("filters") or FieldFilterFormSet(prefix=FILTERS_PREFIX),
        "invite_form": forms.get("invite_form") or InviteForm(),
    }
    return render(request, "campaigns/buyers/detail.html", context, status=status)


class BuyerDetailView(BuyerPageMixin, View):
    def get(self, request, pk: int):
        return buyer_page(request, self.get_buyer(pk))

    def post(self, request, pk: int):
        buyer = self.get_buyer(pk)
        form = BuyerForm(request.POST, instance=self.get_buyer(pk))
        if form.is_valid():
            try:
                catalog.buyer_save(buyer=buyer, data=form.cleaned_data, actor=request.user, request=request)
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, "Buyer saved.")
                return redirect("campaigns:buyer_detail", pk=buyer.pk)
        return buyer_page(request, buyer, form=form, status=400)


class WalletCreditView(BuyerPageMixin, View):
    def post(self, request, pk: int):
        buyer = self.get_buyer(pk)
        form = WalletCreditForm(request.POST)
        if form.is_valid():
            try:
                entry = wallets.wallet_credit(buyer=buyer, actor=request.user, request=request, **form.cleaned_data)
            except ServiceError as error:
                add_errors(form, error)
            else:
                messages.success(request, f"Credited {entry.amount}: the balance is {entry.balance_after}.")
                return redirect("campaigns:buyer_detail", pk=buyer.pk)
        return buyer_page(request, buyer, credit_form=form, status=400)


class WalletAdjustView(BuyerPageMixin, View):
    required_role = Role.ADMIN

    def post(self, request, pk: int):
        buyer = self.get_buyer(pk)
        form = WalletAdjustForm(request.POST)
        if form.is_valid():
            try:
                entry = wallets.wallet_adjust(buyer=buyer, actor=request.user, request=request, **form.cleaned_data)
            except ServiceError as error:
                add_errors(form, error)
            else:
                messages.success(request, f"Adjusted by {entry.amount}: the balance is {entry.balance_after}.")
                return redirect("campaigns:buyer_detail", pk=buyer.pk)
        return buyer_page(request, buyer, adjust_form=form, status=400)


class DeliveryMethodCreateView(BuyerPageMixin, View):
    def post(self, request, pk: int):
        buyer = self.get_buyer(pk)
        form = DeliveryMethodForm(request.POST)
        if form.is_valid():
            try:
                method = deliveries.delivery_method_create(
                    buyer=buyer, actor=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                add_errors(form, error)
            else:
                if method.webhook_endpoint is not None:
                    # Rendered, not redirected: the signing secret exists in this response only.
                    secret = {"endpoint": method.webhook_endpoint, "secret": method.webhook_endpoint.secret}
                    return buyer_page(request, buyer, new_secret=secret, status=201)
                messages.success(request, f"{method.get_kind_display()} to {method.destination} added.")
                return redirect("campaigns:buyer_detail", pk=buyer.pk)
        return buyer_page(request, buyer, method_form=form, status=400)


class DeliveryMethodActionView(CampaignsPageMixin, View):
    """Turn a delivery method on or off, or delete one that never delivered."""

    def post(self, request, pk: int):
        method = get_object_or_404(
            DeliveryMethod.objects.select_related("buyer__organization", "webhook_endpoint"), pk=pk
        )
        try:
            if request.POST.get("action") == "delete":
                deliveries.delivery_method_delete(method=method, actor=request.user, request=request)
                messages.success(request, "Delivery method removed.")
            else:
                deliveries.delivery_method_update(
                    method=method, is_active=not method.is_active, actor=request.user, request=request
                )
                messages.success(request, f"Delivery method turned {'on' if method.is_active else 'off'}.")
        except ServiceError as error:
            messages.error(request, error.message)
        return redirect("campaigns:buyer_detail", pk=method.buyer_id)


class SaleDeliveryRetryView(CampaignsPageMixin, View):
    def post(self, request, pk: int):
        delivery = get_object_or_404(SaleDelivery.objects.select_related("sale__buyer__organization"), pk=pk)
        try:
            deliveries.sale_delivery_retry(delivery=delivery, actor=request.user, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Delivery queued again.")
        return redirect("campaigns:buyer_detail", pk=delivery.sale.buyer_id)


class BuyerInviteCreateView(BuyerPageMixin, View):
    def post(self, request, pk: int | None = None):
        buyer = self.get_buyer(pk) if pk else None
        form = InviteForm(request.POST)
        if form.is_valid():
            days = form.cleaned_data.get("expires_in_days")
            try:
                invite = portal.buyer_invite_create(
                    organization=request.organization,
                    buyer=buyer,
                    max_uses=form.cleaned_data.get("max_uses"),
                    expires_at=timezone.now() + timedelta(days=days) if days else None,
                    actor=request.user,
                    request=request,
                )
            except ServiceError as error:
                add_errors(form, error)
            else:
                messages.success(request, f"Invite code {invite.code} created.")
                return redirect("campaigns:buyer_detail", pk=buyer.pk) if buyer else redirect("campaigns:buyers")
        if buyer is None:
            messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
            return redirect("campaigns:buyers")
        return buyer_page(request, buyer, invite_form=form, status=400)


class BuyerInviteRevokeView(CampaignsPageMixin, View):
    def post(self, request, pk: int):
        invite = get_object_or_404(BuyerInvite.objects.select_related("organization"), pk=pk)
        portal.buyer_invite_revoke(invite=invite, actor=request.user, request=request)
        messages.success(request, f"Invite code {invite.code} revoked.")
        return (
            redirect("campaigns:buyer_detail", pk=invite.buyer_id) if invite.buyer_id else redirect("campaigns:buyers")
        )


class PortalUserRemoveView(CampaignsPageMixin, View):
    def post(self, request, pk: int):
        access = get_object_or_404(BuyerPortalUser.objects.select_related("buyer__organization", "user"), pk=pk)
        portal.buyer_portal_user_remove(access=access, actor=request.user, request=request)
        messages.success(request, f"{access.user.email} can no longer sign in to {access.buyer}'s portal.")
        return redirect("campaigns:buyer_detail", pk=access.buyer_id)
