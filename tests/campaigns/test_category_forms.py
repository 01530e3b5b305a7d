"""A campaign's category drives the forms: the leads "manual add" page and hosted web forms show its fields (one
builder, ``campaigns.forms_schema``), validate them with the schema ingest uses, store them in the lead's custom
fields and send the lead through the same intake and distribution as the supplier API. Another organization's
campaigns are never offered."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from accounts.constants import Role
from campaigns.forms_schema import CategoryFieldsForm, campaign_fields_form, schema_fields_shown
from campaigns.models import CampaignSubmission, LeadSale
from campaigns.schema import category_json_schema
from integrations.services import connections as connection_services
from integrations.services import hosted_forms
from leadflow.exceptions import ServiceError
from leads.intake.custom_fields import validate_custom_fields
from leads.models import InboundSubmission, Lead
from tests.conftest import member_of
from tests.factories import CampaignFactory, CategoryFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}

# One field of every type the schema knows.
EVERY_TYPE = [
    {"name": "age", "label": "Age", "type": "number", "required": True},
    {"name": "coverage", "label": "Coverage", "type": "choice", "choices": ["basic", "full"], "required": True},
    {"name": "spouse_email", "label": "Spouse's email", "type": "email"},
    {"name": "alt_phone", "label": "Other phone", "type": "phone"},
    {"name": "birth_date", "label": "Date of birth", "type": "date"},
    {"name": "smoker", "label": "Smoker", "type": "boolean"},
    {"name": "notes", "label": "Notes", "type": "text"},
]


@pytest.fixture
def medicare(organization, market):
    """A campaign with one funded buyer whose category has a field of every type."""
    campaign, [subscription] = market("round_robin", buyers=[{}])
    category = campaign.category
    category.name = "Medicare"
    category.fields = EVERY_TYPE
    category.save()
    campaign.refresh_from_db()
    return campaign, subscription


@pytest.fixture
def manager_page(client, organization):
    client.force_login(member_of(organization, Role.MANAGER))
    return client


def inputs(html: str) -> dict[str, str]:
    """name → the tag that renders it (input, select), for the category fields (``custom-…``)."""
    return {
        match.group(2): match.group(0)
        for match in re.finditer(r'<(input|select)[^>]*name="custom-([a-z_]+)"[^>]*>', html)
    }


# The builder -------------------------------------------------------------------------------------------------------


def test_every_schema_type_gets_its_widget_and_required_mark():
    form = CategoryFieldsForm(schema_fields=EVERY_TYPE, legend="Medicare")
    html = form.as_div()
    tags = inputs(html)
    assert 'type="number"' in tags["age"] and "required" in tags["age"]
    assert tags["coverage"].startswith("<select")
    assert 'type="email"' in tags["spouse_email"] and "required" not in tags["spouse_email"]
    assert 'type="tel"' in tags["alt_phone"]
    assert 'type="date"' in tags["birth_date"]
    assert 'type="checkbox"' in tags["smoker"]
    assert 'type="text"' in tags["notes"]
    assert '<option value="full">full</option>' in html


def test_values_are_typed_as_the_schema_wants_and_checked_by_the_ingest_validator():
    form = CategoryFieldsForm(
        {
            "custom-age": "67",
            "custom-coverage": "full",
            "custom-spouse_email": "",
            "custom-birth_date": "1958-04-02",
            "custom-smoker": "on",
            "custom-notes": "Calls after six",
        },
        schema_fields=EVERY_TYPE,
    )
    assert form.is_valid(), form.errors
    values = form.custom_values()
    assert values == {
        "age": 67,
        "coverage": "full",
        "birth_date": "1958-04-02",
        "smoker": True,
        "notes": "Calls after six",
    }
    # Exactly what the intake accepts for the category.
    assert list(validate_custom_fields(values, category_json_schema(EVERY_TYPE))) == []
    decimal = CategoryFieldsForm({"custom-age": "67.5", "custom-coverage": "basic"}, schema_fields=EVERY_TYPE)
    assert decimal.is_valid() and decimal.custom_values()["age"] == 67.5
    unticked = CategoryFieldsForm({"custom-age": "70", "custom-coverage": "basic"}, schema_fields=EVERY_TYPE)
    assert unticked.is_valid() and unticked.custom_values()["smoker"] is False


def test_each_bad_value_is_an_error_on_its_own_field():
    form = CategoryFieldsForm(
        {"custom-age": "old", "custom-coverage": "gold", "custom-spouse_email": "nope", "custom-birth_date": "2 May"},
        schema_fields=EVERY_TYPE,
    )
    assert not form.is_valid()
    assert set(form.errors) == {"age", "coverage", "spouse_email", "birth_date"}
    missing = CategoryFieldsForm({}, schema_fields=EVERY_TYPE)
    assert not missing.is_valid() and set(missing.errors) == {"age", "coverage"}


def test_a_hosted_form_shows_required_fields_always_and_only_the_chosen_optional_ones():
    shown = [field["name"] for field in schema_fields_shown(EVERY_TYPE, optional=["smoker"])]
    assert shown == ["age", "coverage", "smoker"]
    assert [field["name"] for field in schema_fields_shown(EVERY_TYPE, optional=None)] == [
        field["name"] for field in EVERY_TYPE
    ]


def test_no_campaign_or_no_fields_means_no_form(organization):
    assert campaign_fields_form(None) is None
    bare = CampaignFactory(organization=organization, category=CategoryFactory(organization=organization, fields=[]))
    assert campaign_fields_form(bare) is None


# Manual add -----------------------------------------------------------------------------------------------------


def test_choosing_a_campaign_swaps_in_its_category_fields(manager_page, medicare):
    campaign, _ = medicare
    page = manager_page.get("/leads/new/").content.decode()
    assert 'hx-get="/leads/new/fields/"' in page and 'id="category-fields"' in page
    assert f'<option value="{campaign.pk}">{campaign.name}</option>' in page
    fieldset = manager_page.get("/leads/new/fields/", {"campaign": campaign.pk}, **HTMX)
    html = fieldset.content.decode()
    assert fieldset.status_code == 200 and "<fieldset" in html and "<html" not in html  # the fieldset alone
    assert "<legend>Medicare</legend>" in html
    assert set(inputs(html)) == {field["name"] for field in EVERY_TYPE}
    assert html.count('<span class="req">*</span>') == 2  # age and coverage
    # No campaign chosen: the empty fieldset, still a target for the next swap.
    empty = manager_page.get("/leads/new/fields/", {"campaign": ""}, **HTMX).content.decode()
    assert 'id="category-fields"' in empty and "custom-" not in empty


def test_a_manual_lead_for_a_campaign_is_validated_stored_and_distributed(
    manager_page, organization, medicare, django_capture_on_commit_callbacks
):
    campaign, subscription = medicare
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_page.post(
            "/leads/new/",
            {
                "campaign": campaign.pk,
                "full_name": "Mira Shah",
                "phone": "98123 45678",
                "custom-age": "71",
                "custom-coverage": "full",
                "custom-smoker": "on",
            },
            follow=True,
        )
    lead = Lead.objects.unscoped().get(organization=organization)
    assert response.redirect_chain[-1][0] == f"/leads/{lead.pk}/"
    assert lead.source == "manual" and lead.custom == {"age": 71, "coverage": "full", "smoker": True}
    submission = InboundSubmission.objects.unscoped().get(lead=lead)
    assert submission.context["campaign_id"] == campaign.pk  # a replay validates against the same category
    assert CampaignSubmission.objects.unscoped().get(submission=submission).outcome == "accepted"
    sale = LeadSale.objects.unscoped().get(lead=lead)
    assert (sale.buyer_id, sale.price) == (subscription.buyer_id, Decimal("10.00"))
    assert "Sold to 1 buyer for 10.00." in response.content.decode()


def test_manual_add_shows_each_category_error_on_its_field_and_creates_nothing(manager_page, organization, medicare):
    campaign, _ = medicare
    response = manager_page.post(
        "/leads/new/",
        {"campaign": campaign.pk, "full_name": "Bad", "email": "bad@example.com", "custom-age": "old"},
    )
    assert response.status_code == 400
    category_form = response.context["category_form"]
    assert set(category_form.errors) == {"age", "coverage"}
    html = response.content.decode()
    assert "Enter a number." in html and html.count('class="field-error"') >= 2
    assert 'value="old"' in html  # what was typed stays
    assert not Lead.objects.unscoped().filter(organization=organization).exists()
    assert not InboundSubmission.objects.unscoped().filter(organization=organization).exists()


def test_the_intake_refusing_a_contact_field_keeps_the_category_fields_on_the_page(manager_page, medicare):
    campaign, _ = medicare
    response = manager_page.post(
        "/leads/new/",
        {"campaign": campaign.pk, "email": "not-an-email", "custom-age": "70", "custom-coverage": "basic"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["email"]
    assert "<legend>Medicare</legend>" in response.content.decode()


def test_another_organizations_campaign_is_never_offered_or_accepted(manager_page, organization, medicare):
    their_category = CategoryFactory(organization=OrganizationFactory(), name="Their vertical")
    theirs = CampaignFactory(organization=their_category.organization, category=their_category, name="Their campaign")
    page = manager_page.get("/leads/new/").content.decode()
    assert "Their campaign" not in page and "Their vertical" not in page
    assert "Their vertical" not in manager_page.get("/campaigns/").content.decode()  # nor their categories
    assert manager_page.get("/leads/new/fields/", {"campaign": theirs.pk}, **HTMX).status_code == 404
    response = manager_page.post(
        "/leads/new/", {"campaign": theirs.pk, "full_name": "Sneaky", "email": "sneaky@example.com", "custom-age": "70"}
    )
    assert response.status_code == 400 and response.context["form"].errors["campaign"]
    assert not Lead.objects.unscoped().filter(organization=organization).exists()


def test_agents_add_leads_without_campaigns(client, organization, medicare):
    campaign, _ = medicare
    client.force_login(member_of(organization, Role.AGENT))
    page = client.get("/leads/new/").content.decode()
    assert 'name="campaign"' not in page and "category-fields" not in page
    assert client.get("/leads/new/fields/", {"campaign": campaign.pk}).status_code == 403
    # A campaign posted anyway is ignored: the lead is an ordinary one, sold to nobody.
    client.post("/leads/new/", {"campaign": campaign.pk, "full_name": "Plain", "email": "plain@example.com"})
    lead = Lead.objects.unscoped().get(organization=organization)
    assert not LeadSale.objects.unscoped().filter(lead=lead).exists()
    assert "campaign_id" not in InboundSubmission.objects.unscoped().get(lead=lead).context


# Hosted forms ---------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_page(client, organization):
    client.force_login(member_of(organization, Role.ADMIN))
    return client


@pytest.fixture
def hosted(organization):
    return connection_services.connection_create(organization=organization, provider="form", name="Medicare quote")


def test_the_form_builder_ties_a_form_to_a_campaign_and_picks_optional_fields(admin_page, hosted, medicare):
    campaign, _ = medicare
    page = admin_page.get(f"/integrations/connections/{hosted.pk}/").content.decode()
    assert 'hx-get="/integrations/connections/form-category-fields/"' in page
    assert f'<option value="{campaign.pk}">{campaign.name}</option>' in page
    choices = admin_page.get(
        "/integrations/connections/form-category-fields/", {"campaign": campaign.pk}, **HTMX
    ).content.decode()
    assert "Always asked" in choices and ">Age<" in choices and ">Coverage<" in choices
    assert 'value="smoker"' in choices and 'value="age"' not in choices  # required ones are not optional
    response = admin_page.post(
        f"/integrations/connections/{hosted.pk}/form/",
        {
            "title": "Get a Medicare quote",
            "fields": ["full_name", "phone"],
            "campaign": campaign.pk,
            "category_fields": ["smoker", "birth_date"],
            "consent_text": "",
            "thank_you_url": "",
        },
    )
    assert response.status_code == 302
    hosted.refresh_from_db()
    assert hosted.settings["campaign_id"] == campaign.pk
    assert hosted.settings["category_fields"] == ["birth_date", "smoker"]  # in the schema's order
    saved = admin_page.get(f"/integrations/connections/{hosted.pk}/").content.decode()
    assert f'<option value="{campaign.pk}" selected>' in saved
    assert re.search(r'<input[^>]*value="smoker"[^>]*checked', saved)
    assert not re.search(r'<input[^>]*value="notes"[^>]*checked', saved)


def test_the_form_builder_refuses_unknown_fields_and_other_organizations_campaigns(admin_page, hosted, medicare):
    campaign, _ = medicare
    base = {"title": "Quote", "fields": ["full_name", "phone"], "consent_text": "", "thank_you_url": ""}
    unknown = admin_page.post(
        f"/integrations/connections/{hosted.pk}/form/", {**base, "campaign": campaign.pk, "category_fields": ["age"]}
    )
    assert unknown.status_code == 400 and unknown.context["hosted_form_settings"].errors["category_fields"]
    theirs = CampaignFactory(organization=OrganizationFactory(), name="Their campaign")
    assert "Their campaign" not in admin_page.get(f"/integrations/connections/{hosted.pk}/").content.decode()
    refused = admin_page.post(f"/integrations/connections/{hosted.pk}/form/", {**base, "campaign": theirs.pk})
    assert refused.status_code == 400 and refused.context["hosted_form_settings"].errors["campaign"]
    choices = admin_page.get("/integrations/connections/form-category-fields/", {"campaign": theirs.pk}, **HTMX)
    assert "Their" not in choices.content.decode() and "custom" not in choices.content.decode()
    hosted.refresh_from_db()
    assert not hosted.settings.get("campaign_id")
    # The service refuses it too, whoever calls it.
    with pytest.raises(ServiceError, match="organization's campaigns"):
        hosted_forms.hosted_form_configure(
            connection=hosted, title="x", fields=["phone"], consent_text="", thank_you_url="", campaign=theirs
        )


@pytest.fixture
def quote_form(hosted, medicare):
    campaign, _ = medicare
    return hosted_forms.hosted_form_configure(
        connection=hosted,
        title="Get a Medicare quote",
        fields=["full_name", "phone"],
        consent_text="",
        thank_you_url="",
        campaign=campaign,
        category_fields=["smoker"],
    )


def test_the_public_form_shows_the_category_fields_it_was_built_with(quote_form):
    html = Client().get(f"/integrations/f/{quote_form.public_token}/").content.decode()
    assert set(inputs(html)) == {"age", "coverage", "smoker"}
    assert "<legend>Medicare</legend>" in html


def test_a_public_form_lead_is_validated_stored_and_distributed(
    organization, quote_form, medicare, django_capture_on_commit_callbacks
):
    campaign, subscription = medicare
    visitor = Client(enforce_csrf_checks=True)
    url = f"/integrations/f/{quote_form.public_token}/"
    bad = visitor.post(url, {"full_name": "Ravi", "phone": "9812345670", "custom-age": "seventy"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "Enter a number." in html and "This field is required." in html and 'value="seventy"' in html
    assert not InboundSubmission.objects.unscoped().filter(organization=organization).exists()

    with django_capture_on_commit_callbacks(execute=True):
        good = visitor.post(
            url, {"full_name": "Ravi", "phone": "9812345670", "custom-age": "70", "custom-coverage": "basic"}
        )
    assert good.status_code == 200 and "Thank you" in good.content.decode()
    lead = Lead.objects.unscoped().get(organization=organization)
    assert lead.source == "form" and lead.custom == {"age": 70, "coverage": "basic", "smoker": False}
    submission = InboundSubmission.objects.unscoped().get(lead=lead)
    assert submission.context == {
        "connection_id": quote_form.pk,
        "provider": "form",
        "campaign_id": campaign.pk,
        "supplier_id": None,
    }
    assert LeadSale.objects.unscoped().get(lead=lead).buyer_id == subscription.buyer_id


def test_the_intake_checks_the_public_form_against_the_category_it_stores(organization, quote_form, medicare):
    """The stored submission names the campaign: the intake refuses what the category refuses, whatever the page
    sent (here a value the page's form never parsed)."""
    result = hosted_forms.hosted_form_submit(
        connection=quote_form,
        data={"full_name": "Direct", "phone": "9812345671"},
        remote_ip="203.0.113.9",
        custom={"age": "seventy", "coverage": "gold"},
    )
    assert result.outcome.status == "rejected"
    assert set(result.outcome.errors) >= {"custom.age", "custom.coverage"}
    assert result.distribution is None
    assert not Lead.objects.unscoped().filter(organization=organization).exists()


def test_a_bot_filling_the_honeypot_is_still_answered_as_a_success(organization, quote_form):
    response = Client().post(
        f"/integrations/f/{quote_form.public_token}/", {"full_name": "Bot", "website": "http://spam.example"}
    )
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    assert not InboundSubmission.objects.unscoped().filter(organization=organization).exists()


def test_a_form_whose_campaign_is_gone_falls_back_to_its_contact_fields(organization, quote_form, medicare):
    campaign, _ = medicare
    quote_form.settings["campaign_id"] = campaign.pk + 10_000
    quote_form.save(update_fields=["settings"])
    html = Client().get(f"/integrations/f/{quote_form.public_token}/").content.decode()
    assert "custom-" not in html and 'name="phone"' in html
