"""CSV import through the API: upload with a suggested mapping and preview, a background job with progress and
dedupe counts, bad rows in a downloadable error report."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from leads.models import InboundSubmission, Lead, LeadImport
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

CSV = (
    "Full Name,E-mail,Mobile,City,Budget\n"
    "Asha Verma,asha@example.com,98765 43210,Pune,45 lakh\n"
    "Ravi Kumar,not-an-email,,Mumbai,\n"
    "Meena Iyer,meena@example.com,+91 99887 66554,Chennai,30 lakh\n"
    "Asha again,ASHA@example.com,,Pune,\n"
    ",,,,\n"
    "Old Lead,existing@example.com,,Delhi,\n"
)


def upload(client, text=CSV, name="leads.csv"):
    return client.post(
        "/api/v1/lead-imports/",
        {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")},
        format="multipart",
    )


def test_upload_suggests_a_mapping_and_previews(manager_client):
    response = upload(manager_client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "uploaded" and body["total_rows"] == 5
    assert body["mapping"] == {
        "Full Name": "full_name",
        "E-mail": "email",
        "Mobile": "phone",
        "City": "city",
        "Budget": "custom",
    }
    assert body["preview"][0]["Full Name"] == "Asha Verma" and len(body["preview"]) == 5


def test_import_runs_counts_and_reports_bad_rows(manager_client, organization, django_capture_on_commit_callbacks):
    LeadFactory(organization=organization, email="existing@example.com")
    lead_import = upload(manager_client).json()
    mapping = {"Full Name": "full_name", "E-mail": "email", "Mobile": "phone", "City": "city", "Budget": "custom"}
    with django_capture_on_commit_callbacks(execute=True):
        started = manager_client.post(
            f"/api/v1/lead-imports/{lead_import['id']}/start/",
            {"mapping": mapping, "tags": ["Expo 2026"]},
            format="json",
        )
    assert started.status_code == 200, started.content
    done = manager_client.get(f"/api/v1/lead-imports/{lead_import['id']}/").json()
    assert (done["status"], done["percent"]) == ("completed", 100)
    assert (done["processed_rows"], done["created_count"], done["duplicate_count"], done["error_count"]) == (5, 2, 2, 1)

    asha = Lead.objects.unscoped().get(email="asha@example.com", duplicate_of__isnull=True)
    assert (asha.source, asha.phone, asha.city, asha.custom, asha.tags) == (
        "csv",
        "+919876543210",
        "Pune",
        {"Budget": "45 lakh"},
        ["expo 2026"],
    )
    assert Lead.objects.unscoped().filter(duplicate_of=asha).count() == 1
    # Every row was stored as a submission, the bad one replayable.
    assert InboundSubmission.objects.unscoped().filter(source="csv").count() == 5
    assert InboundSubmission.objects.unscoped().filter(source="csv", status="rejected").count() == 1

    report = manager_client.get(f"/api/v1/lead-imports/{lead_import['id']}/errors/")
    rows = list(csv.DictReader(io.StringIO(report.content.decode())))
    assert len(rows) == 1
    assert rows[0]["row"] == "3" and rows[0]["Full Name"] == "Ravi Kumar" and "email" in rows[0]["errors"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("name,email\n", "no leads"),
        ("a,a\n1,2\n", "same name"),
        ("\x00\x01binary", "binary"),
    ],
)
def test_bad_files_are_refused_with_a_reason(manager_client, text, message):
    response = upload(manager_client, text)
    assert response.status_code == 400
    assert message in str(response.json()["errors"]["file"])
    assert not LeadImport.objects.unscoped().exists()


def test_mapping_is_validated(manager_client):
    lead_import = upload(manager_client).json()
    url = f"/api/v1/lead-imports/{lead_import['id']}/start/"
    no_contact = manager_client.post(
        url, {"mapping": {"Full Name": "full_name", "E-mail": "", "Mobile": ""}}, format="json"
    )
    assert no_contact.status_code == 400 and "email or phone" in str(no_contact.json()["errors"])
    twice = manager_client.post(url, {"mapping": {"E-mail": "email", "Mobile": "email"}}, format="json")
    assert twice.status_code == 400 and "Two columns" in str(twice.json()["errors"])
    unknown = manager_client.post(url, {"mapping": {"E-mail": "password"}}, format="json")
    assert unknown.status_code == 400


def test_semicolon_and_cp1252_files_import(manager_client, django_capture_on_commit_callbacks):
    text = "Name;Email\nJosé Núñez;jose@example.com\n"
    response = manager_client.post(
        "/api/v1/lead-imports/",
        {"file": SimpleUploadedFile("excel.csv", text.encode("cp1252"), content_type="text/csv")},
        format="multipart",
    )
    body = response.json()
    assert body["mapping"] == {"Name": "full_name", "Email": "email"}
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(f"/api/v1/lead-imports/{body['id']}/start/", {"mapping": body["mapping"]}, format="json")
    assert Lead.objects.unscoped().get(email="jose@example.com").full_name == "José Núñez"
