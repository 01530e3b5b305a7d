"""The public page of a hosted web form: no login, embeddable in an iframe, CSRF-exempt (a third-party page's
iframe cannot carry our CSRF cookie; the form acts for no signed-in user, and the honeypot and a per-visitor rate
limit stand in)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from accounts.services import client_ip
from campaigns.forms_schema import campaign_fields_form, split_intake_errors
from leads.forms import add_errors

from ..constants import HOSTED_FORM_FIELDS, HOSTED_FORM_HONEYPOT, IntegrationProvider
from ..services import hosted_forms
from ..services.inbound import inbound_connection_for_token

TEMPLATE = "integrations/connections/hosted_form.html"


@method_decorator([csrf_exempt, xframe_options_exempt], name="dispatch")
class HostedFormView(View):
    def get_connection(self, token: str):
        connection = inbound_connection_for_token(public_token=token, provider=IntegrationProvider.FORM)
        if connection is None:
            raise Http404("No such form.")
        return connection

    def category_form(self, connection, data=None):
        """The campaign's category fields the form asks for (``None`` for a form tied to no campaign)."""
        options = hosted_forms.hosted_form_options(connection)
        return campaign_fields_form(
            hosted_forms.hosted_form_campaign(connection), data, optional=options["category_fields"]
        )

    def render_form(self, request, connection, *, errors=None, values=None, category_form=None, sent=False, status=200):
        options = hosted_forms.hosted_form_options(connection)
        if category_form is None and not sent:
            category_form = self.category_form(connection)
        return render(
            request,
            TEMPLATE,
            {
                "form_options": options,
                "fields": [(name, HOSTED_FORM_FIELDS[name]) for name in options["fields"]],
                "errors": errors or {},
                "values": values or {},
                "category_form": category_form,
                "sent": sent,
                "honeypot": HOSTED_FORM_HONEYPOT,
                "utm": {key: value for key, value in request.GET.items() if key.startswith("utm_")},
                "embedded": request.GET.get("embed") == "1" or request.POST.get("embed") == "1",
            },
            status=status,
        )

    def get(self, request, token: str):
        return self.render_form(request, self.get_connection(token))

    def post(self, request, token: str):
        connection = self.get_connection(token)
        category_form = self.category_form(connection, request.POST)
        # What cannot be parsed (not a number, not one of the choices) is shown at once and stored nowhere, as on
        # the lead pages; a bot filling the honeypot is still answered as if it worked.
        if (
            category_form is not None
            and not category_form.is_valid()
            and not hosted_forms.honeypot_filled(request.POST)
        ):
            return self.render_form(request, connection, values=request.POST, category_form=category_form, status=400)
        try:
            result = hosted_forms.hosted_form_submit(
                connection=connection,
                data=request.POST,
                remote_ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", ""),
                referrer=request.headers.get("Referer", ""),
                headers=request.headers,
                custom=category_form.custom_values() if category_form is not None and category_form.is_valid() else {},
            )
        except hosted_forms.HostedFormRateLimited:
            errors = {"non_field_errors": ["Too many submissions from here; please try again in a few minutes."]}
            return self.render_form(
                request, connection, errors=errors, values=request.POST, category_form=category_form, status=429
            )
        outcome = result.outcome
        if outcome is not None and outcome.status in ("rejected", "failed"):
            custom_errors, errors = split_intake_errors(outcome.errors)
            if category_form is not None:
                add_errors(category_form, custom_errors)
            else:
                errors = outcome.errors
            return self.render_form(
                request, connection, errors=errors, values=request.POST, category_form=category_form, status=400
            )
        thank_you = hosted_forms.hosted_form_options(connection)["thank_you_url"]
        if thank_you:
            return redirect(thank_you)
        return self.render_form(request, connection, sent=True)
