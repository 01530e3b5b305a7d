"""Notifications: the list, the bell, marking read, each member's preferences; and the public unsubscribe page."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin
from leads.forms import add_errors
from leads.models import Lead

from ..constants import MessageChannel, NotificationChannel, NotificationEvent, OptOutMethod
from ..forms import PreferencesForm
from ..models import Notification, NotificationProfile
from ..services.compliance import opt_out_record, unsubscribe_token_read
from ..services.notifications import notifications_mark_read, preferences_of, unread_count, wants


class NotificationListView(OrganizationRequiredMixin, View):
    required_role = Role.VIEWER

    def get(self, request):
        notifications = (
            Notification.objects.filter(user=request.user)
            .exclude(data__contains={"in_app": False})
            .order_by("-created_at")[:100]
        )
        return render(request, "messaging/pages/notifications.html", {"notifications": notifications})


class MarkReadView(OrganizationRequiredMixin, View):
    required_role = Role.VIEWER

    def post(self, request):
        ids = [int(i) for i in request.POST.getlist("id") if i.isdigit()] or None
        notifications_mark_read(organization=request.organization, user=request.user, ids=ids)
        if request.htmx:
            return BellView().get(request)
        return redirect(request.POST.get("next") or "messaging:notifications")


class BellView(OrganizationRequiredMixin, View):
    required_role = Role.VIEWER

    def get(self, request):
        count = unread_count(organization_id=request.organization.pk, user_id=request.user.pk)
        return HttpResponse(str(count) if count else "", content_type="text/plain")


class PreferencesView(OrganizationRequiredMixin, View):
    required_role = Role.VIEWER

    def _current(self, request) -> dict:
        preferences = preferences_of(organization_id=request.organization.pk, user_ids=[request.user.pk])
        return {
            (event, channel): wants(preferences, user_id=request.user.pk, event=event, channel=channel)
            for event in NotificationEvent.values
            for channel in NotificationChannel.values
        }

    def _render(self, request, form, status=200):
        rows = [
            (label, [form[f"{event}__{channel}"] for channel in NotificationChannel.values])
            for event, label in NotificationEvent.choices
        ]
        return render(
            request,
            "messaging/pages/preferences.html",
            {"form": form, "rows": rows, "channels": NotificationChannel.choices},
            status=status,
        )

    def get(self, request):
        phone = NotificationProfile.objects.filter(user=request.user).values_list("phone", flat=True).first() or ""
        form = PreferencesForm(current=self._current(request), initial={"phone": phone})
        return self._render(request, form)

    def post(self, request):
        from ..services.notifications import preferences_set

        form = PreferencesForm(request.POST, current=self._current(request))
        if form.is_valid():
            try:
                preferences_set(
                    organization=request.organization,
                    user=request.user,
                    choices=form.choices(),
                    phone=form.cleaned_data["phone"],
                )
            except ServiceError as error:
                add_errors(form, error)
            else:
                messages.success(request, "Notification preferences saved.")
                return redirect("messaging:preferences")
        return self._render(request, form, status=400)


@method_decorator(
    csrf_exempt, name="dispatch"
)  # mail clients' one-click POST carries no CSRF token; the link is signed
class UnsubscribeView(View):
    """The link at the foot of every email to a lead: one click (or the mail client's one-click POST) opts out."""

    def _read(self, token: str) -> dict:
        data = unsubscribe_token_read(token)
        if data is None:
            raise Http404("This unsubscribe link is not valid.")
        return data

    def get(self, request, token: str):
        self._read(token)
        return render(request, "messaging/pages/unsubscribe.html", {"done": False})

    def post(self, request, token: str):
        from accounts.models import Organization

        data = self._read(token)
        organization = Organization.objects.filter(pk=data["o"]).first()
        if organization is None:
            raise Http404("This unsubscribe link is not valid.")
        lead = Lead.objects.unscoped().filter(organization=organization, pk=data.get("l")).first()
        opt_out_record(
            organization=organization,
            address=data["a"],
            lead=lead,
            channel=MessageChannel.EMAIL,
            method=OptOutMethod.LINK,
        )
        return render(request, "messaging/pages/unsubscribe.html", {"done": True, "organization": organization})
