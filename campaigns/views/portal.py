"""The buyer portal: a buyer's people see the leads delivered to them, their wallet and their returns, and
nothing else. Every page goes through ``campaigns.portal`` (the mixin and the buyer-filtered selectors).

Joining is public: an invite code turns the signed-in person, or a new account, into a portal user.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from leadflow.exceptions import ServiceError

from ..forms import PortalJoinForm, PortalReturnForm
from ..portal import (
    PORTAL_SESSION_KEY,
    BuyerPortalMixin,
    portal_accesses,
    portal_ledger,
    portal_returns,
    portal_sale,
    portal_sales,
)
from ..selectors import buyer_balance
from ..services.portal import buyer_portal_join
from ..services.returns import lead_return_request, return_deadline
from .common import add_errors

PAGE_SIZE = 50


class PortalLeadsView(BuyerPortalMixin, View):
    def get(self, request):
        page = Paginator(portal_sales(request.portal_buyer), PAGE_SIZE).get_page(request.GET.get("page"))
        return render(request, "campaigns/portal/leads.html", {"page": page, "section": "leads"})


class PortalLeadDetailView(BuyerPortalMixin, View):
    def render_page(self, request, sale, form=None, status=200):
        deadline = return_deadline(sale)
        lead_return = getattr(sale, "lead_return", None) if sale.has_return else None
        return render(
            request,
            "campaigns/portal/lead_detail.html",
            {
                "sale": sale,
                "lead": sale.lead,
                "lead_return": lead_return,
                "deadline": deadline,
                "can_return": lead_return is None and deadline is not None and timezone.now() <= deadline,
                "form": form or PortalReturnForm(),
                "section": "leads",
            },
            status=status,
        )

    def get(self, request, pk: int):
        return self.render_page(request, portal_sale(request.portal_buyer, pk))

    def post(self, request, pk: int):
        sale = portal_sale(request.portal_buyer, pk)
        form = PortalReturnForm(request.POST)
        if form.is_valid():
            try:
                lead_return_request(sale=sale, requested_by=request.user, request=request, **form.cleaned_data)
            except ServiceError as error:
                add_errors(form, error)
            else:
                messages.success(request, "Return requested: you will see the decision under Returns.")
                return redirect("portal:lead_detail", pk=sale.pk)
        return self.render_page(request, sale, form=form, status=400)


class PortalWalletView(BuyerPortalMixin, View):
    def get(self, request):
        buyer = request.portal_buyer
        page = Paginator(portal_ledger(buyer), PAGE_SIZE).get_page(request.GET.get("page"))
        return render(
            request,
            "campaigns/portal/wallet.html",
            {"page": page, "balance": buyer_balance(buyer), "buyer": buyer, "section": "wallet"},
        )


class PortalReturnsView(BuyerPortalMixin, View):
    def get(self, request):
        page = Paginator(portal_returns(request.portal_buyer), PAGE_SIZE).get_page(request.GET.get("page"))
        return render(request, "campaigns/portal/returns.html", {"page": page, "section": "returns"})


class PortalSwitchView(BuyerPortalMixin, View):
    """For people who buy from several sellers: pick whose portal to see."""

    def post(self, request):
        wanted = request.POST.get("access")
        access = portal_accesses(request.user).filter(pk=wanted).first() if str(wanted).isdigit() else None
        if access is not None:
            request.session[PORTAL_SESSION_KEY] = access.pk
        return redirect("portal:leads")


class PortalJoinView(View):
    template_name = "campaigns/portal/join.html"

    def form(self, request, data=None):
        signed_in = request.user.is_authenticated
        return PortalJoinForm(data, signed_in=signed_in, initial={"code": request.GET.get("code", "")})

    def get(self, request):
        return render(request, self.template_name, {"form": self.form(request)})

    def post(self, request):
        form = self.form(request, request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            signed_in = request.user.is_authenticated
            try:
                access = buyer_portal_join(user=request.user if signed_in else None, request=request, **data)
            except ServiceError as error:
                add_errors(form, error)
            else:
                if not signed_in:
                    login(request, access.user, backend="django.contrib.auth.backends.ModelBackend")
                request.session[PORTAL_SESSION_KEY] = access.pk
                messages.success(request, f"Welcome: this is {access.buyer.name}'s lead portal.")
                return redirect("portal:leads")
        return render(request, self.template_name, {"form": form}, status=400)
