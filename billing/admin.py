from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .events import billing_event_process
from .models import (
    BillingEvent,
    BuyerPaymentMethod,
    Invoice,
    InvoiceLine,
    Plan,
    PlanCheckout,
    PlanPrice,
    ProviderPlan,
    Refund,
    Subscription,
    WalletTopUp,
)
from .selectors import revenue_summary


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "monthly_lead_quota", "seats", "is_public", "sort_order"]
    list_filter = ["is_public"]
    search_fields = ["name", "code"]
    inlines = [PlanPriceInline]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "organization",
        "plan",
        "status",
        "interval",
        "currency",
        "provider",
        "trial_ends_at",
        "current_period_end",
        "invoices",
    ]
    list_filter = ["status", "plan", "provider", "currency"]
    search_fields = ["organization__name", "organization__slug", "provider_subscription_id", "provider_customer_id"]
    raw_id_fields = ["organization"]
    list_select_related = ["organization", "plan"]
    # Status changes have side effects (campaigns paused, owners told): they come from providers and beat.
    readonly_fields = ["status", "past_due_since", "suspended_at", "cancelled_at", "provider_event_at"]
    change_list_template = "admin/billing/subscription/change_list.html"
    actions = ["extend_trial"]

    @admin.action(description="Extend the trial of selected subscriptions")
    def extend_trial(self, request, queryset):
        from .admin_actions import extend_trials

        organizations = [subscription.organization for subscription in queryset.select_related("organization")]
        return extend_trials(self, request, organizations, request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME))

    @admin.display(description="Invoices")
    def invoices(self, subscription):
        url = reverse("admin:billing_invoice_changelist") + f"?organization__id__exact={subscription.organization_id}"
        return format_html('<a href="{}">Invoices</a>', url)

    def get_urls(self):
        return [
            path("revenue/", self.admin_site.admin_view(self.revenue_view), name="billing_revenue"),
            *super().get_urls(),
        ]

    def revenue_view(self, request):
        days = request.GET.get("days", "")
        days = min(int(days), 365) if days.isdigit() and int(days) > 0 else 30
        context = {
            **self.admin_site.each_context(request),
            "title": "Revenue",
            "summary": revenue_summary(days=days),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/revenue.html", context)


@admin.register(BillingEvent)
class BillingEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "provider", "event_type", "event_id", "status", "organization", "attempts", "result"]
    list_filter = ["provider", "status", "event_type"]
    search_fields = ["event_id", "event_type", "result"]
    readonly_fields = [f.name for f in BillingEvent._meta.fields]
    actions = ["process_again"]

    @admin.action(description="Process again (safe: handlers change nothing twice)")
    def process_again(self, request, queryset):
        for event in queryset:
            billing_event_process(event_pk=event.pk, force=True)
        messages.success(request, f"{queryset.count()} event(s) processed again.")

    def has_add_permission(self, request):
        return False


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "description", "quantity", "unit_amount", "amount", "position"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["number", "organization", "status", "total", "currency", "tax_kind", "issued_at", "pdf"]
    list_filter = ["status", "currency", "tax_kind", "provider"]
    search_fields = ["number", "organization__name", "provider_reference", "customer_tax_id"]
    inlines = [InvoiceLineInline]
    readonly_fields = [f.name for f in Invoice._meta.fields]

    @admin.display(description="PDF")
    def pdf(self, obj):
        return format_html('<a href="{}">PDF</a>', reverse("admin:billing_invoice_pdf", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<int:invoice_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="billing_invoice_pdf"),
            *super().get_urls(),
        ]

    def pdf_view(self, request, invoice_id: int):
        from django.http import HttpResponse
        from django.shortcuts import get_object_or_404

        from .invoices import invoice_pdf

        invoice = get_object_or_404(Invoice.objects.unscoped(), pk=invoice_id)
        return HttpResponse(invoice_pdf(invoice), content_type="application/pdf")


@admin.register(WalletTopUp)
class WalletTopUpAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "buyer", "kind", "amount", "currency", "provider", "status", "error"]
    list_filter = ["status", "kind", "provider"]
    search_fields = ["provider_reference", "payment_reference", "buyer__name"]
    readonly_fields = [f.name for f in WalletTopUp._meta.fields]


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ["refunded_at", "organization", "amount", "currency", "provider", "provider_refund_id"]
    list_filter = ["provider", "currency"]


admin.site.register(ProviderPlan, list_display=["price", "provider", "amount_minor", "provider_plan_id"])
admin.site.register(BuyerPaymentMethod, list_display=["buyer", "organization", "provider", "label"])
admin.site.register(PlanCheckout, list_display=["created_at", "email", "plan", "provider", "status", "organization"])
