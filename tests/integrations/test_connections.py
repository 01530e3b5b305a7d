"""Inbound connections: credentials encrypted at rest, and health that turns to error and tells the owners."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.core.management import call_command
from django.db import connection as db

from accounts.constants import Role
from integrations.checks import check_integrations_encryption_key
from integrations.constants import CONNECTION_ERROR_THRESHOLD, ConnectionStatus
from integrations.crypto import CredentialsUnreadable
from integrations.models import IntegrationConnection
from integrations.services import connections as services
from leadflow.exceptions import ServiceError

from ..factories import IntegrationConnectionFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def _column(connection_id: int) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integrationconnection WHERE id = %s", [connection_id])
        return cursor.fetchone()[0]


def test_credentials_round_trip_and_the_column_holds_ciphertext(organization):
    connection = services.connection_create(
        organization=organization,
        provider="facebook",
        name="Acme page",
        credentials={"page_access_token": "EAAB-very-secret-token"},
    )
    stored = _column(connection.pk)
    assert "EAAB-very-secret-token" not in stored
    assert "page_access_token" not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token
    fresh = IntegrationConnection.objects.unscoped().get(pk=connection.pk)
    assert fresh.credentials == {"page_access_token": "EAAB-very-secret-token"}
    # Encrypting twice gives two ciphertexts (random IV): equal tokens are not visible as equal columns.
    fresh.save()
    assert _column(connection.pk) != stored
    with pytest.raises(NotImplementedError):
        IntegrationConnection.objects.unscoped().filter(credentials__contains="EAAB").exists()


def test_keys_rotate_newest_first_and_a_dropped_key_cannot_read(organization, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.INTEGRATIONS_ENCRYPTION_KEY = old
    connection = services.connection_create(
        organization=organization, provider="webhook", name="Zap", credentials={"hmac_secret": "s3cret"}
    )
    settings.INTEGRATIONS_ENCRYPTION_KEY = f"{new},{old}"
    assert IntegrationConnection.objects.unscoped().get(pk=connection.pk).credentials == {"hmac_secret": "s3cret"}
    IntegrationConnection.objects.unscoped().get(pk=connection.pk).save()  # re-encrypted with the new key
    settings.INTEGRATIONS_ENCRYPTION_KEY = new
    assert IntegrationConnection.objects.unscoped().get(pk=connection.pk).credentials == {"hmac_secret": "s3cret"}
    settings.INTEGRATIONS_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(CredentialsUnreadable):
        IntegrationConnection.objects.unscoped().get(pk=connection.pk)


def test_deploy_check_warns_without_a_key_and_errors_on_a_bad_one(settings):
    settings.INTEGRATIONS_ENCRYPTION_KEY = ""
    assert [m.id for m in check_integrations_encryption_key(None)] == ["integrations.W001"]
    settings.INTEGRATIONS_ENCRYPTION_KEY = "not-a-key"
    assert [m.id for m in check_integrations_encryption_key(None)] == ["integrations.E001"]
    settings.INTEGRATIONS_ENCRYPTION_KEY = Fernet.generate_key().decode()
    assert check_integrations_encryption_key(None) == []


def test_google_ads_connections_get_a_key_and_every_connection_a_unique_token(organization):
    google = services.connection_create(organization=organization, provider="google_ads", name="Form")
    webhook = services.connection_create(organization=organization, provider="webhook", name="Zap")
    assert len(google.credential("google_key")) >= 40
    assert google.public_token != webhook.public_token
    with pytest.raises(ServiceError):
        services.connection_create(organization=organization, provider="myspace", name="x")


def test_mapping_targets_are_validated(organization):
    connection = services.connection_create(organization=organization, provider="webhook", name="Zap")
    services.connection_mapping_set(
        connection=connection,
        mapping={"email": "data.contact.email", "custom.budget": "data.budget"},
        defaults={"utm_source": "zapier"},
    )
    assert connection.settings["mapping"] == {"email": "data.contact.email", "custom.budget": "data.budget"}
    with pytest.raises(ServiceError) as error:
        services.connection_mapping_set(connection=connection, mapping={"password": "x"}, defaults={})
    assert error.value.field == "mapping"


def test_failures_in_a_row_turn_to_error_once_and_email_the_owners(organization, django_capture_on_commit_callbacks):
    owner = MembershipFactory(organization=organization, role=Role.OWNER).user
    MembershipFactory(organization=organization, role=Role.AGENT)
    connection = IntegrationConnectionFactory(organization=organization)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(CONNECTION_ERROR_THRESHOLD - 1):
            services.connection_record_failure(connection=connection, error="mapping gives no email")
    connection.refresh_from_db()
    assert (connection.status, connection.consecutive_errors) == (ConnectionStatus.CONNECTED, 4)
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        services.connection_record_failure(connection=connection, error="mapping gives no email")
        services.connection_record_failure(connection=connection, error="still broken")
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR
    assert connection.consecutive_errors == CONNECTION_ERROR_THRESHOLD + 1
    assert connection.last_error == "still broken"
    assert len(mail.outbox) == 1  # one email on the way to error, not one per failure
    assert mail.outbox[0].to == [owner.email]
    assert "still broken" in mail.outbox[0].body  # read when sent: the latest error

    services.connection_record_success(connection=connection)
    connection.refresh_from_db()
    assert (connection.status, connection.consecutive_errors) == (ConnectionStatus.CONNECTED, 0)
    assert connection.last_success_at is not None


def test_an_auth_error_turns_to_error_at_once(organization, django_capture_on_commit_callbacks):
    MembershipFactory(organization=organization, role=Role.OWNER)
    connection = IntegrationConnectionFactory(organization=organization, provider="facebook")
    with django_capture_on_commit_callbacks(execute=True):
        services.connection_record_failure(
            connection=connection, error="Error validating access token", auth_error=True
        )
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR
    assert len(mail.outbox) == 1


def test_disconnect_forgets_credentials_and_a_success_does_not_revive_it(organization):
    connection = IntegrationConnectionFactory(organization=organization, credentials={"hmac_secret": "x"})
    services.connection_disconnect(connection=connection)
    services.connection_record_success(connection=connection)
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.credentials == {}


def test_check_command_is_clean():
    call_command("check")


# The Integrations page --------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_page(client, organization):
    from ..conftest import member_of

    client.force_login(member_of(organization, Role.ADMIN))
    return client


def test_the_nav_links_the_page_and_it_lists_connections_with_health(admin_page, organization):
    IntegrationConnectionFactory(
        organization=organization, name="Zapier site", status="error", last_error="no email", consecutive_errors=6
    )
    IntegrationConnectionFactory(name="Someone else's zap")
    response = admin_page.get("/integrations/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/integrations/"' in html  # the main navigation's "Integrations"
    assert "Zapier site" in html and "needs attention" in html and "6 in a row" in html
    assert "Someone else" not in html


def test_creating_a_webhook_shows_its_url_and_the_mapping_previews_the_last_payload(admin_page, organization):
    response = admin_page.post("/integrations/", {"provider": "webhook", "name": "Pabbly"})
    assert response.status_code == 302
    connection = IntegrationConnection.objects.unscoped().get(organization=organization, name="Pabbly")
    detail = admin_page.get(response["Location"]).content.decode()
    assert f"/api/webhooks/inbound/{connection.public_token}/" in detail

    payload = {"data": {"contact": {"email": "p@example.com", "name": "Pia"}}}
    assert (
        admin_page.post(
            f"/api/webhooks/inbound/{connection.public_token}/", payload, content_type="application/json"
        ).status_code
        == 400  # no mapping yet: no email at the top level
    )
    preview = admin_page.post(
        f"/integrations/connections/{connection.pk}/mapping/",
        {"mapping": "email = data.contact.email\nfull_name = data.contact.name", "defaults": "", "preview": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert preview.status_code == 200
    text = preview.content.decode()
    assert "p@example.com" in text and "data.contact.email" in text
    connection.refresh_from_db()
    assert connection.settings.get("mapping") in (None, {})  # a preview saves nothing

    saved = admin_page.post(
        f"/integrations/connections/{connection.pk}/mapping/",
        {"mapping": "email = data.contact.email", "defaults": 'utm_source = pabbly\ntags = ["pabbly"]'},
    )
    assert saved.status_code == 302
    connection.refresh_from_db()
    assert connection.settings["mapping"] == {"email": "data.contact.email"}
    assert connection.settings["defaults"] == {"utm_source": "pabbly", "tags": ["pabbly"]}

    bad = admin_page.post(f"/integrations/connections/{connection.pk}/mapping/", {"mapping": "password = x"})
    assert bad.status_code == 400 and "is not a lead field" in bad.content.decode()


def test_google_ads_shows_url_and_key_and_send_test_makes_a_test_lead(admin_page, organization):
    from leads.models import Lead

    connection = services.connection_create(organization=organization, provider="google_ads", name="Form")
    html = admin_page.get(f"/integrations/connections/{connection.pk}/").content.decode()
    assert f"/api/webhooks/google-ads/{connection.public_token}/" in html
    assert connection.credential("google_key") in html
    assert admin_page.post(f"/integrations/connections/{connection.pk}/test/").status_code == 302
    lead = Lead.objects.unscoped().get(organization=organization)
    assert "test-lead" in lead.tags and lead.source == "google_ads"
    assert "Test lead received" in admin_page.get(f"/integrations/connections/{connection.pk}/").content.decode()


def test_webhook_secret_is_shown_once_and_send_test_signs(admin_page, organization):
    connection = services.connection_create(organization=organization, provider="webhook", name="Site")
    response = admin_page.post(f"/integrations/connections/{connection.pk}/secret/", {"enabled": "1"})
    connection.refresh_from_db()
    secret = connection.credential("hmac_secret")
    assert secret and secret in response.content.decode()
    assert secret not in admin_page.get(f"/integrations/connections/{connection.pk}/").content.decode()
    admin_page.post(f"/integrations/connections/{connection.pk}/test/")
    connection.refresh_from_db()
    assert connection.last_success_at is not None and connection.consecutive_errors == 0


def test_disconnect_and_other_organizations_connections_are_404(admin_page, organization):
    theirs = IntegrationConnectionFactory()
    for path in ("", "test/", "disconnect/", "secret/", "mapping/"):
        method = admin_page.get if path == "" else admin_page.post
        assert method(f"/integrations/connections/{theirs.pk}/{path}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "connected"
    ours = IntegrationConnectionFactory(organization=organization)
    assert admin_page.post(f"/integrations/connections/{ours.pk}/disconnect/").status_code == 302
    ours.refresh_from_db()
    assert ours.status == "disconnected"


def test_agents_cannot_open_the_page(client, organization):
    from ..conftest import member_of

    client.force_login(member_of(organization, Role.AGENT))
    assert client.get("/integrations/").status_code == 403


# The API ---------------------------------------------------------------------------------------------------------------


def test_the_api_creates_maps_lists_payloads_tests_and_disconnects(organization, user_api_client):
    api = user_api_client(Role.ADMIN)
    created = api.post("/api/v1/integrations/connections/", {"provider": "webhook", "name": "Make"}, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["inbound_url"].endswith(
        f"/api/webhooks/inbound/{IntegrationConnection.objects.unscoped().get().public_token}/"
    )
    assert "credentials" not in data and data["signed"] is False

    bad = api.patch(
        f"/api/v1/integrations/connections/{data['id']}/", {"settings": {"mapping": {"nope": "x"}}}, format="json"
    )
    assert bad.status_code == 400 and "mapping" in bad.json()["errors"]
    mapped = api.patch(
        f"/api/v1/integrations/connections/{data['id']}/",
        {"settings": {"mapping": {"email": "contact.mail"}}},
        format="json",
    )
    assert mapped.json()["settings"]["mapping"] == {"email": "contact.mail"}

    sent = api.post(f"/api/v1/integrations/connections/{data['id']}/test/")
    assert sent.status_code == 200 and sent.json()["ok"] is True
    payloads = api.get(f"/api/v1/integrations/connections/{data['id']}/submissions/").json()
    assert len(payloads) == 1 and payloads[0]["status"] == "accepted"

    assert api.delete(f"/api/v1/integrations/connections/{data['id']}/").status_code == 204
    assert api.get(f"/api/v1/integrations/connections/{data['id']}/").json()["status"] == "disconnected"


def test_the_api_is_for_admins(organization, user_api_client):
    assert user_api_client(Role.MANAGER).get("/api/v1/integrations/connections/").status_code == 403
