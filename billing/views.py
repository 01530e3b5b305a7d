"""Billing pages: the organization's billing page (plan, status, usage, invoices, payment method, changes), the
public pricing page and its checkout, wallet top-ups, the offline provider's pay pages, and the sign-in link.
Views parse input, call one service and render; nothing here credits money or activates a plan — only a
provider's confirmation does (``billing.events``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from accounts.constants import Role
from accounts.forms import BusinessDetailsForm
from accounts.services import organization_update
from campaigns.models import Buyer, Wallet
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin

from . import selectors, services
from .checkout import magic_link_peek, magic_link_use, plan_checkout_start
from .events import billing_event_process, billing_event_record
from .forms import PricingCheckoutForm, SubscribeForm, TopUpForm
from .invoices import invoice_pdf
from .models import (
    BillingProvider,
    BuyerPaymentMethod,
    CheckoutStatus,
    Invoice,
    Plan,
    PlanCheckout,
    PlanPrice,
    Subscription,
    SubscriptionStatus,
    TopUpStatus,
    WalletTopUp,
)
from .providers import provider_for
from .providers import razorpay as razorpay_provider
from .topups import top_up_start


def _absolute(request, url_name: str, *args) -> str:
    return request.build_absolute_uri(reverse(url_name, args=args))


def _plans_with_prices(currency: str):
    plans = Plan.objects.filter(is_public=True).prefetch_related("prices")
    return [(plan, plan.price_for(currency), plan.price_for(currency, "yearly")) for plan in plans]


# The organization's billing page -------------------------------------------------------------------------------


class BillingOverviewView(OrganizationRequiredMixin, View):
    """Plan, status, trial days left, usage against quota, invoices, payment method, and plan changes."""

    required_role = Role.ADMIN
    template_name = "billing/overview.html"

    def get(self, request, subscribe_form=None, status=200):
        organization = request.organization
        subscription = Subscription.objects.select_related("plan", "pending_plan").first()
        currency = subscription.currency if subscription else organization.currency
        used, quota = selectors.lead_usage_this_month(organization=organization)
        return render(
            request,
            self.template_name,
            {
                "subscription": subscription,
                "currency": currency,
                "trial_days": settings.TRIAL_DAYS,
                "plans": _plans_with_prices(currency),
                "usage": {"used": used, "quota": quota, "percent": min(100, used * 100 // quota) if quota else None},
                "metered": selectors.metered_usage_this_month(organization=organization),
                "invoices": selectors.organization_invoices(organization=organization)[:24],
                "subscribe_form": subscribe_form
                or SubscribeForm(
                    initial={
                        "plan": subscription.plan.code if subscription else None,
                        "interval": subscription.interval if subscription else "monthly",
                    }
                ),
                "grace_days": settings.BILLING_GRACE_DAYS,
                "can_pay": subscription is not None and subscription.status != SubscriptionStatus.ACTIVE,
            },
            status=status,
        )


class SubscribeView(OrganizationRequiredMixin, View):
    """Pay for a plan: a checkout with the organization's provider."""

    required_role = Role.OWNER

    def post(self, request):
        form = SubscribeForm(request.POST)
        if not form.is_valid():
            return BillingOverviewView().get(request, subscribe_form=form, status=400)
        subscription = Subscription.objects.first()
        try:
            checkout = plan_checkout_start(
                email=request.user.email,
                plan=form.cleaned_data["plan"],
                interval=form.cleaned_data["interval"],
                currency=subscription.currency if subscription else request.organization.currency,
                organization=request.organization,
                success_url=_absolute(request, "billing:overview"),
                cancel_url=_absolute(request, "billing:overview"),
            )
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
            return BillingOverviewView().get(request, subscribe_form=form, status=400)
        return _checkout_redirect(checkout)


def _checkout_redirect(checkout: PlanCheckout):
    if checkout.provider == BillingProvider.RAZORPAY:
        return redirect("billing:razorpay_checkout", token=checkout.token)
    return redirect(checkout.checkout_url)


class ChangePlanView(OrganizationRequiredMixin, View):
    required_role = Role.OWNER

    def post(self, request):
        plan = get_object_or_404(Plan, code=request.POST.get("plan"), is_public=True)
        try:
            subscription = services.subscription_change_plan(
                organization=request.organization, plan=plan, actor=request.user, request=request
            )
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            if subscription.pending_plan_id == plan.pk:
                messages.success(request, f"You move to the {plan.name} plan at the next renewal.")
            else:
                messages.success(request, f"You are now on the {plan.name} plan.")
        return redirect("billing:overview")


class CancelView(OrganizationRequiredMixin, View):
    required_role = Role.OWNER

    def post(self, request):
        try:
            subscription = services.subscription_cancel(
                organization=request.organization, actor=request.user, request=request
            )
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            if subscription.cancel_at_period_end and subscription.current_period_end:
                messages.success(request, f"Your subscription ends on {subscription.current_period_end:%d %b %Y}.")
            else:
                messages.success(request, "Your subscription is cancelled. Your data is kept.")
        return redirect("billing:overview")


class PortalView(OrganizationRequiredMixin, View):
    """Stripe's customer portal: change the card, see Stripe's receipts, cancel."""

    required_role = Role.OWNER

    def post(self, request):
        try:
            url = services.subscription_portal_url(
                organization=request.organization, return_url=_absolute(request, "billing:overview")
            )
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("billing:overview")
        if not url:
            messages.error(request, "Your payment provider has no customer portal: pay again to change the card.")
            return redirect("billing:overview")
        return redirect(url)


class InvoicePdfView(OrganizationRequiredMixin, View):
    required_role = Role.ADMIN

    def get(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response


# Checkout pages (Razorpay's Checkout.js, the offline provider, returns) ----------------------------------------


class RazorpayCheckoutView(View):
    """Razorpay Checkout.js for a plan checkout (its subscription id), or the hosted page's short URL."""

    def get(self, request, token: str):
        checkout = get_object_or_404(PlanCheckout.objects.unscoped(), token=token, provider=BillingProvider.RAZORPAY)
        return render(
            request,
            "billing/checkout_razorpay.html",
            {
                "title": f"{checkout.plan.name} plan",
                "options": checkout.checkout_options,
                "hosted_url": checkout.checkout_url,
                "return_url": reverse("billing:razorpay_return", args=[checkout.token]),
                "script_url": settings.RAZORPAY_CHECKOUT_JS_URL,
            },
        )


class RazorpayReturnView(View):
    """Checkout's handler posts the payment id, subscription id and signature here. A valid signature says the
    payer authorized it; the plan is activated by Razorpay's webhook, not by this page."""

    def post(self, request, token: str):
        checkout = get_object_or_404(PlanCheckout.objects.unscoped(), token=token, provider=BillingProvider.RAZORPAY)
        valid = razorpay_provider.subscription_return_valid(
            payment_id=request.POST.get("razorpay_payment_id", ""),
            subscription_id=checkout.provider_reference,
            signature=request.POST.get("razorpay_signature", ""),
        )
        if not valid:
            return render(request, "billing/checkout_done.html", {"ok": False, "checkout": checkout}, status=400)
        return render(request, "billing/checkout_done.html", {"ok": True, "checkout": checkout})


class CheckoutDoneView(View):
    """Where a provider's hosted checkout sends the payer back (Stripe's success_url)."""

    def get(self, request, token: str):
        checkout = get_object_or_404(PlanCheckout.objects.unscoped(), token=token)
        return render(request, "billing/checkout_done.html", {"ok": True, "checkout": checkout})


def _offline_allowed():
    if not settings.BILLING_OFFLINE_CHECKOUT:
        raise Http404("The offline checkout is turned off.")


class OfflineCheckoutView(View):
    """The offline provider's payment page: "Pay" confirms through the same event path as a provider's webhook."""

    template_name = "billing/offline_checkout.html"

    def _checkout(self, token):
        _offline_allowed()
        return get_object_or_404(PlanCheckout.objects.unscoped(), token=token, provider=BillingProvider.OFFLINE)

    def get(self, request, token: str):
        checkout = self._checkout(token)
        price = checkout.plan.price_for(checkout.currency, checkout.interval)
        return render(request, self.template_name, {"checkout": checkout, "price": price})

    def post(self, request, token: str):
        checkout = self._checkout(token)
        if checkout.status == CheckoutStatus.OPEN:
            event, _ = billing_event_record(
                provider=BillingProvider.OFFLINE,
                event_id=f"checkout:{checkout.token}",
                event_type="checkout.completed",
                payload={"checkout": checkout.token},
                occurred_at=None,
            )
            billing_event_process(event_pk=event.pk)
        checkout.refresh_from_db()
        return render(request, "billing/checkout_done.html", {"ok": True, "checkout": checkout, "offline": True})


class OfflineTopUpView(View):
    template_name = "billing/offline_top_up.html"

    def _top_up(self, reference):
        _offline_allowed()
        return get_object_or_404(
            WalletTopUp.objects.unscoped().select_related("buyer"),
            provider=BillingProvider.OFFLINE,
            provider_reference=reference,
        )

    def get(self, request, reference: str):
        return render(request, self.template_name, {"top_up": self._top_up(reference)})

    def post(self, request, reference: str):
        top_up = self._top_up(reference)
        event, _ = billing_event_record(
            provider=BillingProvider.OFFLINE,
            event_id=f"top_up:{reference}",
            event_type="top_up.paid",
            payload={"reference": reference, "amount": str(top_up.amount), "currency": top_up.currency},
            occurred_at=None,
        )
        billing_event_process(event_pk=event.pk)
        top_up.refresh_from_db()
        return render(request, self.template_name, {"top_up": top_up, "done": True})


# Public pricing and checkout-first signup ----------------------------------------------------------------------


class PricingView(View):
    template_name = "billing/pricing.html"

    def get(self, request, form=None, status=200):
        currency = request.GET.get("currency") or (form.data.get("currency") if form else None) or "INR"
        if not PlanPrice.objects.filter(currency=currency).exists():
            currency = "INR"
        interval = request.GET.get("interval") or "monthly"
        plan_code = request.GET.get("plan") or (form.data.get("plan") if form else "")
        chosen = Plan.objects.filter(is_public=True, code=plan_code).first()
        if form is None:
            form = PricingCheckoutForm(
                initial={
                    "currency": currency,
                    "interval": interval,
                    "plan": chosen,
                    "country": "IN" if currency == "INR" else "US",
                }
            )
        return render(
            request,
            self.template_name,
            {
                "plans": _plans_with_prices(currency),
                "currency": currency,
                "interval": interval,
                "form": form,
                "chosen": chosen,
                "trial_days": settings.TRIAL_DAYS,
                "currencies": sorted(set(PlanPrice.objects.values_list("currency", flat=True))),
            },
            status=status,
        )

    def post(self, request):
        form = PricingCheckoutForm(request.POST)
        if not form.is_valid():
            return self.get(request, form=form, status=400)
        data = form.cleaned_data
        details = {"name": data["name"], "country": data["country"], "tax_id": data["tax_id"]}
        try:
            checkout = plan_checkout_start(
                email=data["email"],
                plan=data["plan"],
                interval=data["interval"],
                currency=data["currency"],
                details=details,
                success_url=request.build_absolute_uri(reverse("pricing_done")),
                cancel_url=request.build_absolute_uri(reverse("pricing")),
            )
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
            return self.get(request, form=form, status=400)
        return _checkout_redirect(checkout)


class PricingDoneView(View):
    def get(self, request):
        return render(request, "billing/checkout_done.html", {"ok": True, "checkout": None})


class MagicLoginView(View):
    """The welcome email's one-time link. GET only shows a button (mail scanners follow links); POST signs in."""

    def get(self, request, token: str):
        link = magic_link_peek(token=token)
        return render(request, "billing/magic_login.html", {"link": link}, status=200 if link else 400)

    def post(self, request, token: str):
        try:
            link = magic_link_use(token=token)
        except ServiceError as error:
            messages.error(request, error.message)
            return redirect("account_login")
        login(request, link.user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(link.next_url or "dashboard")


class WelcomeView(OrganizationRequiredMixin, View):
    """Onboarding after a checkout: the workspace exists (made by the confirmation), its details prefilled from
    the checkout; the owner confirms or corrects them."""

    required_role = Role.OWNER
    template_name = "billing/welcome.html"

    def get(self, request):
        form = BusinessDetailsForm(instance=request.organization)
        return render(
            request,
            self.template_name,
            {"form": form, "subscription": Subscription.objects.select_related("plan").first()},
        )

    def post(self, request):
        form = BusinessDetailsForm(
            request.POST, instance=type(request.organization).objects.get(pk=request.organization.pk)
        )
        if not form.is_valid():
            return render(
                request,
                self.template_name,
                {"form": form, "subscription": Subscription.objects.select_related("plan").first()},
                status=400,
            )
        organization_update(organization=request.organization, actor=request.user, request=request, **form.cleaned_data)
        messages.success(request, f"Welcome to LeadFlow! {request.organization.name} is ready.")
        return redirect("dashboard")


# Wallet top-ups ------------------------------------------------------------------------------------------------


class WalletsView(OrganizationRequiredMixin, View):
    """Buyers' wallets with a top-up form each, saved cards and the latest top-ups."""

    required_role = Role.MANAGER
    template_name = "billing/wallets.html"

    def get(self, request, form=None, form_buyer=None, status=200):
        buyers = list(Buyer.objects.order_by("name", "id"))
        wallets = {w.buyer_id: w for w in Wallet.objects.filter(buyer__in=buyers)}
        methods = {m.buyer_id: m for m in BuyerPaymentMethod.objects.filter(buyer__in=buyers)}
        rows = [
            {
                "buyer": b,
                "wallet": wallets.get(b.pk),
                "method": methods.get(b.pk),
                "form": form if form_buyer == b.pk else TopUpForm(),
            }
            for b in buyers
        ]
        return render(
            request,
            self.template_name,
            {
                "rows": rows,
                "top_ups": WalletTopUp.objects.select_related("buyer")[:20],
                "currency": request.organization.currency,
                "provider": provider_for(request.organization),
            },
            status=status,
        )


class TopUpStartView(OrganizationRequiredMixin, View):
    required_role = Role.MANAGER

    def post(self, request, buyer_id: int):
        buyer = get_object_or_404(Buyer, pk=buyer_id)
        form = TopUpForm(request.POST)
        if not form.is_valid():
            return WalletsView().get(request, form=form, form_buyer=buyer.pk, status=400)
        try:
            top_up = top_up_start(
                buyer=buyer,
                amount=form.cleaned_data["amount"],
                save_method=form.cleaned_data["save_method"],
                actor=request.user,
                request=request,
                success_url_for=lambda top_up: _absolute(request, "billing:top_up", top_up.pk),
                cancel_url=_absolute(request, "billing:wallets"),
            )
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
            return WalletsView().get(request, form=form, form_buyer=buyer.pk, status=400)
        # The top-up's page shows the checkout link (to open, or to send to the buyer) or Razorpay's Checkout.js.
        return redirect("billing:top_up", top_up_id=top_up.pk)


class TopUpView(OrganizationRequiredMixin, View):
    """A top-up's status; for Razorpay, its Checkout.js (the buyer pays here or on a shared screen)."""

    required_role = Role.MANAGER

    def get(self, request, top_up_id: int):
        top_up = get_object_or_404(WalletTopUp.objects.select_related("buyer"), pk=top_up_id)
        return render(
            request,
            "billing/top_up.html",
            {
                "top_up": top_up,
                "script_url": settings.RAZORPAY_CHECKOUT_JS_URL,
                "pending": top_up.status == TopUpStatus.PENDING,
            },
        )

    def post(self, request, top_up_id: int):
        """Razorpay Checkout's handler: the signature is checked, the wallet is not credited here (the webhook
        does that)."""
        top_up = get_object_or_404(
            WalletTopUp.objects.select_related("buyer"), pk=top_up_id, provider=BillingProvider.RAZORPAY
        )
        valid = razorpay_provider.order_return_valid(
            order_id=top_up.provider_reference,
            payment_id=request.POST.get("razorpay_payment_id", ""),
            signature=request.POST.get("razorpay_signature", ""),
        )
        if valid:
            messages.success(
                request, "Payment received by Razorpay: the wallet is credited as soon as Razorpay confirms it."
            )
        else:
            messages.error(request, "The payment's signature did not verify; nothing was credited.")
        return redirect("billing:top_up", top_up_id=top_up.pk)
