"""Exporting and erasing a person: what the export holds, that erasure leaves no row of the organization mentioning
them (while their leads' figures and sales stay), that it is all or nothing, audited, and what pages and commands do."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.management import CommandError, call_command

from accounts.constants import Role
from accounts.models import AuditEvent
from accounts.services import audit_record
from campaigns.models import BuyerContact, LeadSale
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookMessage
from leads.intake.pipeline import lead_intake
from leads.models import InboundSubmission, Lead, LeadImport
from leads.services.leads import lead_add_note
from privacy import registry
from privacy.services import person_erase, person_export
from tests.conftest import member_of
from tests.factories import (
    BuyerFactory,
    ConversionEventFactory,
    LeadDistributionFactory,
    LeadImportFactory,
    OrganizationFactory,
    WebhookAttemptFactory,
    WebhookDeliveryFactory,
    WebhookMessageFactory,
)

pytestmark = pytest.mark.django_db

EMAIL, PHONE, NAME = "asha.rao@example.com", "+919876543210", "Asha Rao"
# What must not survive anywhere in the organization once Asha is erased.
TRACES = (EMAIL, "9876543210", "98765 43210", NAME, "Wants a 2BHK near the metro")
PROJECT_APPS = tuple(settings.LEADFLOW_DOMAIN_APPS)


@pytest.fixture
def asha(organization):
    """Asha as LeadFlow meets her: a lead from the API (raw payload, timeline), a rejected second try that gave her
    phone in local format, a note, a CSV row, a webhook message about her with its delivery log, a stage sent to
    Meta, a sale to a buyer, and audit entries about her lead."""
    outcome = lead_intake(
        organization=organization,
        source="api",
        payload={"full_name": NAME, "email": EMAIL, "phone": PHONE, "city": "Pune", "custom": {"budget": "45 lakh"}},
    )
    lead = outcome.lead
    lead_intake(organization=organization, source="webhook", payload={"mobile": "98765 43210", "email": "not-an-email"})
    owner = member_of(organization, Role.OWNER)
    lead_add_note(lead=lead, author=owner, body="Wants a 2BHK near the metro")
    LeadImportFactory(
        organization=organization,
        content=f"name,email\n{NAME},{EMAIL}\nRavi Kumar,ravi@example.com\n".encode(),
        total_rows=2,
        errors=[{"row": 2, "values": {"name": NAME, "email": EMAIL}, "errors": {"email": ["duplicate"]}}],
    )
    message = WebhookMessageFactory(
        organization=organization,
        payload={"type": "lead.created", "data": {"id": lead.pk, "email": EMAIL, "name": NAME}},
    )
    delivery = WebhookDeliveryFactory(organization=organization, message=message)
    WebhookAttemptFactory(organization=organization, delivery=delivery, response_excerpt=f"got {EMAIL}")
    ConversionEventFactory(organization=organization, lead=lead, leadgen_id="1234567890123")
    distribution = LeadDistributionFactory(organization=organization, lead=lead, status="sold", revenue=Decimal("40"))
    buyer = BuyerFactory(organization=organization, name="Pune Homes")
    sale = LeadSale.objects.unscoped().create(
        organization=organization,
        distribution=distribution,
        lead=lead,
        campaign=distribution.campaign,
        buyer=buyer,
        price=Decimal("40"),
    )
    BuyerContact.objects.unscoped().create(
        organization=organization, buyer=buyer, campaign=distribution.campaign, contact_key=f"email:{EMAIL}", sale=sale
    )
    audit_record(
        organization=organization, action="lead.updated", target=lead, changes={"email": ["old@example.com", EMAIL]}
    )
    return lead


@pytest.fixture
def bystanders(organization):
    """Someone else in the same organization, and Asha's address in another organization: both must stay."""
    ravi = lead_intake(
        organization=organization, source="api", payload={"full_name": "Ravi Kumar", "email": "ravi@example.com"}
    )
    elsewhere = OrganizationFactory()
    other = lead_intake(organization=elsewhere, source="api", payload={"full_name": NAME, "email": EMAIL})
    return ravi.lead, other.lead


def organization_dump(organization) -> str:
    """Every row of the organization in every project table, serialized: what "no row mentions her" is checked on."""
    parts = []
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            manager = model._default_manager
            rows = manager.unscoped() if hasattr(manager, "unscoped") else manager.all()
            if any(field.name == "organization" for field in model._meta.fields):
                rows = rows.filter(organization=organization)
            elif model._meta.label != "accounts.Organization":
                continue
            parts.append(serializers.serialize("json", rows))
    return "\n".join(parts)


def test_the_export_holds_every_source(organization, asha, bystanders):
    document = person_export(organization=organization, email=EMAIL)
    sources = document["sources"]
    assert [lead["id"] for lead in sources["leads"]] == [asha.pk]
    assert sources["leads"][0]["custom"] == {"budget": "45 lakh"} and sources["leads"][0]["city"] == "Pune"
    assert any(entry["kind"] == "created" for entry in sources["activities"])
    assert [note["body"] for note in sources["notes"]] == ["Wants a 2BHK near the metro"]
    # Linked to the lead, and the rejected one found by her address in its raw body.
    assert len(sources["submissions"]) == 1
    assert json.loads(sources["submissions"][0]["raw_body"])["email"] == EMAIL
    assert [row["values"]["email"] for row in sources["import_rows"]] == [EMAIL]
    assert sources["webhook_messages"][0]["payload"]["data"]["id"] == asha.pk
    assert sources["conversion_events"][0]["leadgen_id"] == "1234567890123"
    sale = next(row for row in sources["campaign_sales"] if "buyer" in row)
    assert (sale["buyer"], sale["price"], sale["status"]) == ("Pune Homes", Decimal("40.00"), "sold")
    assert any(row.get("buyer_contact") == f"email:{EMAIL}" for row in sources["campaign_sales"])
    assert any(event["action"] == "lead.updated" for event in sources["audit_events"])
    assert "ravi@example.com" not in json.dumps(sources["leads"], default=str)

    # By phone, in the organization's local format: the same lead, and the rejected payload that had "98765 43210".
    by_phone = person_export(organization=organization, phone="98765 43210")["sources"]
    assert [lead["id"] for lead in by_phone["leads"]] == [asha.pk]
    assert len(by_phone["submissions"]) == 2

    event = AuditEvent.objects.unscoped().filter(organization=organization, action="privacy.exported").first()
    assert event.changes["rows"]["leads"] == 1
    assert EMAIL not in json.dumps(event.changes) and PHONE not in json.dumps(event.changes)


def test_erasure_leaves_no_row_mentioning_her(organization, asha, bystanders):
    ravi, asha_elsewhere = bystanders
    before = organization_dump(organization)
    assert all(trace in before for trace in TRACES), "the fixture must put every trace somewhere"

    changed = person_erase(organization=organization, email=EMAIL, phone=PHONE)

    after = organization_dump(organization)
    left = [trace for trace in TRACES if trace in after]
    assert left == [], f"still stored after erasure: {left}"
    assert changed["leads"] == 1 and changed["submissions"] == 2 and changed["webhook_messages"] == 1
    # The lead stays, anonymized, with what the business's figures need; so do the sale and the routing.
    lead = Lead.objects.unscoped().get(pk=asha.pk)
    assert (lead.email, lead.phone, lead.full_name, lead.custom) == ("", "", "", {})
    assert "privacy-erased" in lead.tags and lead.stage_id == asha.stage_id and lead.source == "api"
    assert LeadSale.objects.unscoped().get(lead=lead).price == Decimal("40.00")
    assert not BuyerContact.objects.unscoped().filter(organization=organization).exists()
    assert not WebhookDelivery.objects.unscoped().filter(organization=organization).exists()
    assert not WebhookAttempt.objects.unscoped().filter(organization=organization).exists()
    # The CSV keeps its other rows.
    content = bytes(LeadImport.objects.unscoped().get(organization=organization).content).decode()
    assert "ravi@example.com" in content and EMAIL not in content
    # Nobody else was touched.
    assert Lead.objects.unscoped().get(pk=ravi.pk).email == "ravi@example.com"
    assert Lead.objects.unscoped().get(pk=asha_elsewhere.pk).email == EMAIL
    erased = AuditEvent.objects.unscoped().get(organization=organization, action="privacy.erased")
    assert erased.changes["rows"] == changed
    assert EMAIL not in json.dumps(erased.changes)

    again = person_erase(organization=organization, email=EMAIL)
    assert sum(again.values()) == 0


def test_erasure_is_all_or_nothing(organization, asha, monkeypatch):
    class Broken(registry.PersonDataSource):
        key, label = "broken", "A source that fails"

        def export(self, target):
            return []

        def erase(self, target):
            raise RuntimeError("disk full")

    # Sources erase in reverse order: placed right after the leads, it fails after every other source erased its
    # rows and before the leads are anonymized. All of it must roll back.
    monkeypatch.setattr(registry, "_sources", [registry._sources[0], Broken(), *registry._sources[1:]])
    with pytest.raises(RuntimeError, match="disk full"):
        person_erase(organization=organization, email=EMAIL)
    assert Lead.objects.unscoped().get(pk=asha.pk).email == EMAIL
    assert InboundSubmission.objects.unscoped().filter(lead=asha).exists()
    assert WebhookMessage.objects.unscoped().filter(organization=organization).exists()
    assert not AuditEvent.objects.unscoped().filter(action="privacy.erased").exists()


def test_the_privacy_page_finds_exports_and_erases_after_confirmation(client, organization, asha):
    admin = member_of(organization, Role.ADMIN)
    client.force_login(admin)
    found = client.get("/settings/privacy/", {"email": EMAIL.upper()})
    assert found.status_code == 200
    counts = {key: count for key, _, count in found.context["found"]["counts"]}
    assert counts["leads"] == 1 and counts["notes"] == 1

    exported = client.post("/settings/privacy/export/", {"email": EMAIL})
    assert exported.status_code == 200
    assert exported["Content-Disposition"].startswith(f'attachment; filename="privacy-export-{organization.slug}-')
    assert json.loads(exported.content)["sources"]["leads"][0]["email"] == EMAIL

    confirm = client.get("/settings/privacy/erase/", {"email": EMAIL})
    assert confirm.status_code == 200 and b'data-testid="erase-form"' in confirm.content
    refused = client.post("/settings/privacy/erase/", {"email": EMAIL, "phone": "", "confirm": "yes"})
    assert refused.status_code == 400 and "erasing cannot be undone" in refused.content.decode()
    assert Lead.objects.unscoped().get(pk=asha.pk).email == EMAIL

    done = client.post("/settings/privacy/erase/", {"email": EMAIL, "phone": "", "confirm": "erase"})
    assert done.status_code == 302
    assert Lead.objects.unscoped().get(pk=asha.pk).email == ""
    assert AuditEvent.objects.unscoped().get(action="privacy.erased").actor_user == admin

    invalid = client.get("/settings/privacy/", {"email": "not an email"})
    assert invalid.status_code == 400 and "not a valid email address" in invalid.content.decode()


def test_the_privacy_page_is_for_owners_and_admins(client, organization):
    client.force_login(member_of(organization, Role.MANAGER))
    assert client.get("/settings/privacy/").status_code == 403
    assert client.post("/settings/privacy/erase/", {"email": EMAIL, "confirm": "erase"}).status_code == 403


def test_commands_export_to_a_file_and_erase_after_confirmation(organization, asha, tmp_path, monkeypatch):
    output = tmp_path / "asha.json"
    call_command(
        "privacy_export", "--org", organization.slug, "--email", EMAIL, "--output", str(output), stderr=StringIO()
    )
    assert json.loads(output.read_text())["sources"]["leads"][0]["id"] == asha.pk

    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Not erased"):
        call_command("privacy_erase", "--org", organization.slug, "--phone", "098765 43210", stdout=StringIO())
    assert Lead.objects.unscoped().get(pk=asha.pk).email == EMAIL

    out = StringIO()
    call_command("privacy_erase", "--org", organization.slug, "--phone", "098765 43210", "--yes", stdout=out)
    assert "Erased: " in out.getvalue()
    assert Lead.objects.unscoped().get(pk=asha.pk).phone == ""
    with pytest.raises(CommandError, match="No organization"):
        call_command("privacy_export", "--org", "nope", "--email", EMAIL)
