"""Hosted web forms: a public, embeddable page through the intake, with consent evidence, a honeypot and a rate
limit."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.constants import Role
from integrations.constants import HOSTED_FORM_RATE_LIMIT
from integrations.services import connections as services
from integrations.services import hosted_forms
from leads.models import InboundSubmission, Lead

from ..conftest import member_of

pytestmark = pytest.mark.django_db

CONSENT = "I agree to be contacted about Acme Homes by phone, SMS and email."


@pytest.fixture
def visitor():
    return Client(enforce_csrf_checks=True)  # a third-party page's iframe has no CSRF cookie


@pytest.fixture
def form(organization):
    connection = services.connection_create(organization=organization, provider="form", name="Site visit")
    return hosted_forms.hosted_form_configure(
        connection=connection,
        title="Book a site visit",
        fields=["full_name", "email", "phone", "message"],
        consent_text=CONSENT,
        thank_you_url="",
    )


def url(form) -> str:
    return f"/integrations/f/{form.public_token}/"


def test_the_public_page_is_embeddable_and_makes_a_lead_with_consent_evidence(visitor, organization, form):
    page = visitor.get(url(form) + "?embed=1&utm_source=site&utm_campaign=diwali")
    assert page.status_code == 200
    assert "X-Frame-Options" not in page
    html = page.content.decode()
    assert "Book a site visit" in html and CONSENT in html and 'name="website"' in html

    response = visitor.post(
        url(form),
        {
            "full_name": "Asha Rao",
            "email": "asha@example.com",
            "phone": "9812345678",
            "message": "Weekend please",
            "consent": "1",
            "utm_source": "site",
            "utm_campaign": "diwali",
            "website": "",
        },
        REMOTE_ADDR="203.0.113.7",
        HTTP_USER_AGENT="Mozilla/5.0",
    )
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    lead = Lead.objects.unscoped().get(organization=organization)
    assert (lead.source, lead.email, lead.phone, lead.utm_source, lead.utm_campaign) == (
        "form",
        "asha@example.com",
        "+919812345678",
        "site",
        "diwali",
    )
    assert lead.custom["message"] == "Weekend please"
    assert (lead.consent_given, lead.consent_text, lead.consent_ip) == (True, CONSENT, "203.0.113.7")
    assert lead.consent_at is not None
    submission = InboundSubmission.objects.unscoped().get(lead=lead)
    assert submission.context["connection_id"] == form.pk and CONSENT in submission.raw_body


def test_without_the_box_ticked_consent_is_recorded_as_not_given(visitor, organization, form):
    visitor.post(url(form), {"email": "nobox@example.com"})
    lead = Lead.objects.unscoped().get(organization=organization)
    assert (lead.consent_given, lead.consent_at) == (False, None)


def test_the_honeypot_drops_bots_silently(visitor, organization, form):
    response = visitor.post(url(form), {"email": "bot@example.com", "website": "http://spam.example"})
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    assert not InboundSubmission.objects.unscoped().filter(organization=organization).exists()


def test_one_visitor_is_rate_limited(visitor, organization, form):
    for n in range(HOSTED_FORM_RATE_LIMIT):
        assert visitor.post(url(form), {"email": f"v{n}@example.com"}, REMOTE_ADDR="198.51.100.9").status_code == 200
    limited = visitor.post(url(form), {"email": "more@example.com"}, REMOTE_ADDR="198.51.100.9")
    assert limited.status_code == 429
    # Another visitor is not affected.
    assert visitor.post(url(form), {"email": "other@example.com"}, REMOTE_ADDR="198.51.100.10").status_code == 200


def test_errors_are_shown_and_a_thank_you_page_is_followed(visitor, organization, form):
    invalid = visitor.post(url(form), {"full_name": "No Contact"})
    assert invalid.status_code == 400 and "email address or a phone number" in invalid.content.decode()
    hosted_forms.hosted_form_configure(
        connection=form, title="T", fields=["email"], consent_text="", thank_you_url="https://acme.example/thanks"
    )
    response = visitor.post(url(form), {"email": "t@example.com"})
    assert response.status_code == 302 and response["Location"] == "https://acme.example/thanks"


def test_unknown_and_disconnected_forms_are_404(visitor, form):
    assert visitor.get("/integrations/f/nope/").status_code == 404
    services.connection_disconnect(connection=form)
    assert visitor.get(url(form)).status_code == 404


def test_the_admin_page_shows_the_embed_snippet_and_saves_settings(client, organization, form):
    client.force_login(member_of(organization, Role.ADMIN))
    html = client.get(f"/integrations/connections/{form.pk}/").content.decode()
    assert f"/integrations/f/{form.public_token}/?embed=1" in html and "&lt;iframe" in html
    saved = client.post(
        f"/integrations/connections/{form.pk}/form/",
        {"title": "New title", "fields": ["full_name", "phone"], "consent_text": "", "thank_you_url": ""},
    )
    assert saved.status_code == 302
    form.refresh_from_db()
    assert form.settings["fields"] == ["full_name", "phone"]
    refused = client.post(f"/integrations/connections/{form.pk}/form/", {"title": "x", "fields": ["full_name"]})
    assert refused.status_code == 400 and "email or a phone" in refused.content.decode()
