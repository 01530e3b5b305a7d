"""Staff answer tickets in the operator console: the thread is an inline, a new row in it is a reply sent through
``ticket_reply_by_staff`` (emailed to the customer and shown live), and the status is changed through the service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from leadflow.exceptions import ServiceError

from . import services
from .constants import TicketStatus
from .models import SupportTicket, TicketMessage


class TicketMessageInline(admin.StackedInline):
    model = TicketMessage
    extra = 1
    fields = ["body", "author", "from_staff", "created_at"]
    readonly_fields = ["author", "from_staff", "created_at"]
    can_delete = False
    verbose_name = "message"
    verbose_name_plural = "Thread (add a message below to answer the customer)"

    def has_change_permission(self, request, obj=None):
        return False  # messages are never edited: the thread is what both sides saw


class SupportTicketForm(forms.ModelForm):
    class Meta:
        model = SupportTicket
        fields = ["status"]
        help_texts = {"status": "Answering sets “Waiting for you” unless you choose Closed (or Open) here."}


@admin.register(SupportTicket)
class SupportTicketAdmin(admin.ModelAdmin):
    form = SupportTicketForm
    list_display = ["id", "subject", "organization", "category", "status", "opened_by", "last_message_at", "whose_turn"]
    list_filter = ["status", "category"]
    search_fields = ["subject", "organization__name", "organization__slug", "opened_by__email"]
    list_select_related = ["organization", "opened_by"]
    readonly_fields = ["organization", "subject", "category", "opened_by", "created_at", "last_message_at", "closed_at"]
    fields = [
        "organization",
        "subject",
        "category",
        "opened_by",
        "status",
        "created_at",
        "last_message_at",
        "closed_at",
    ]
    inlines = [TicketMessageInline]
    actions = ["close"]
    ordering = ["status", "-last_message_at"]

    def has_add_permission(self, request):
        return False  # customers open tickets from the app

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Turn")
    def whose_turn(self, ticket):
        return {TicketStatus.OPEN: "support", TicketStatus.PENDING: "customer"}.get(ticket.status, "–")

    def save_model(self, request, obj, form, change):
        """Nothing is saved here: the replies and the status go through the services in ``save_related``."""

    def save_related(self, request, form, formsets, change):
        ticket = form.instance
        chosen = form.cleaned_data.get("status")
        status_changed = "status" in form.changed_data
        sent = 0
        try:
            for formset in formsets:
                # What the admin's history message reads (a formset that was never save()d has none of these).
                formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
                for inline in formset.forms:
                    body = (inline.cleaned_data.get("body") or "").strip() if inline.has_changed() else ""
                    if inline.instance.pk is not None or not body:
                        continue
                    status = chosen if status_changed else TicketStatus.PENDING
                    message = services.ticket_reply_by_staff(
                        ticket=ticket, staff=request.user, body=body, status=status, request=request
                    )
                    formset.new_objects.append(message)
                    sent += 1
            if status_changed and not sent:
                services.ticket_set_status(ticket=ticket, status=chosen, actor=request.user, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
        if sent:
            messages.success(request, "Reply sent to the customer by email and on their open pages.")

    @admin.action(description="Close selected tickets")
    def close(self, request, queryset):
        closed = 0
        for ticket in queryset.exclude(status=TicketStatus.CLOSED):
            services.ticket_set_status(ticket=ticket, status=TicketStatus.CLOSED, actor=request.user, request=request)
            closed += 1
        self.message_user(request, f"Closed {closed} ticket(s); their customers were told.")
