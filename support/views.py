"""Support pages: the organization's tickets, a new ticket, and a ticket's thread with replies.

Another organization's ticket (or, for members below admin, another member's) is a 404: the scoped manager and
``tickets_visible_to`` never find it. htmx refreshes the thread when a live ``support.*`` event arrives.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin

from . import selectors, services
from .constants import TicketStatus
from .forms import ReplyForm, TicketForm


def _form_error(form, error: ServiceError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


class TicketPageMixin(OrganizationRequiredMixin):
    def visible_tickets(self):
        return selectors.tickets_visible_to(self.request.membership)

    def get_ticket(self, pk: int):
        return get_object_or_404(self.visible_tickets(), pk=pk)


class TicketListView(TicketPageMixin, View):
    def get(self, request):
        status = request.GET.get("status", "")
        tickets = self.visible_tickets()
        if status in TicketStatus.values:
            tickets = tickets.filter(status=status)
        return render(
            request,
            "support/list.html",
            {"tickets": tickets[:200], "status": status, "statuses": TicketStatus.choices},
        )


class TicketCreateView(TicketPageMixin, View):
    def get(self, request):
        return render(request, "support/new.html", {"form": TicketForm()})

    def post(self, request):
        form = TicketForm(request.POST)
        if form.is_valid():
            try:
                ticket = services.ticket_open(
                    organization=request.organization, author=request.user, request=request, **form.cleaned_data
                )
            except ServiceError as error:
                _form_error(form, error)
            else:
                messages.success(request, f"Ticket #{ticket.pk} sent. We will email you when support answers.")
                return redirect("support:detail", pk=ticket.pk)
        return render(request, "support/new.html", {"form": form}, status=400)


def _thread_context(ticket, form=None) -> dict:
    return {"ticket": ticket, "thread": selectors.ticket_thread(ticket), "form": form or ReplyForm()}


class TicketDetailView(TicketPageMixin, View):
    def get(self, request, pk: int):
        return render(request, "support/detail.html", _thread_context(self.get_ticket(pk)))

    def post(self, request, pk: int):
        ticket = self.get_ticket(pk)
        form = ReplyForm(request.POST)
        if form.is_valid():
            try:
                services.ticket_reply_by_member(
                    ticket=ticket, author=request.user, body=form.cleaned_data["body"], request=request
                )
            except ServiceError as error:
                _form_error(form, error)
            else:
                messages.success(request, "Reply sent.")
                return redirect("support:detail", pk=ticket.pk)
        return render(request, "support/detail.html", _thread_context(ticket, form), status=400)


class TicketThreadView(TicketPageMixin, View):
    """The thread alone, for htmx to swap in when support answers while the page is open."""

    def get(self, request, pk: int):
        ticket = self.get_ticket(pk)
        return render(request, "support/partials/thread.html", _thread_context(ticket))


class TicketStatusView(TicketPageMixin, View):
    status: str = TicketStatus.CLOSED

    def post(self, request, pk: int):
        ticket = self.get_ticket(pk)
        try:
            services.ticket_set_status(ticket=ticket, status=self.status, actor=request.user, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"Ticket #{ticket.pk} {'closed' if self.status == TicketStatus.CLOSED else 'reopened'}."
            )
        return redirect("support:detail", pk=ticket.pk)
