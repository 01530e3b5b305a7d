"""allauth flows as LeadFlow configures them: rate-limited login, mandatory verification, login by code, Google."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from .factories import UserFactory

PASSWORD = "correct horse battery staple"


@pytest.mark.django_db
def test_failed_logins_are_rate_limited_per_account(client):
    user = UserFactory(email="target@example.com")
    throttled = "Too many failed login attempts"
    pages = [client.post("/accounts/login/", {"login": user.email, "password": f"wrong-{n}"}) for n in range(6)]
    # Five wrong passwords are answered with the usual form error; the sixth is refused outright.
    assert all(throttled not in page.content.decode() for page in pages[:5])
    assert throttled in pages[5].content.decode()
    # Even the right password is refused while the account is throttled, and no session starts.
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert throttled in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_mandatory_email_verification_blocks_login_until_confirmed(client, settings, mailoutbox):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    response = client.post(
        "/accounts/signup/",
        {
            "email": "verify.me@example.com",
            "password1": "A-strong-passphrase-42",
            "password2": "A-strong-passphrase-42",
        },
    )
    assert response.status_code == 302
    assert "/accounts/confirm-email/" in response["Location"]
    assert len(mailoutbox) == 1
    assert "verify.me@example.com" in mailoutbox[0].to
    # Not signed in yet: the dashboard sends them to log in.
    assert "/accounts/login/" in client.get("/dashboard/")["Location"]

    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mailoutbox[0].body).group(0)
    confirm_path = urlsplit(link).path
    assert client.post(confirm_path).status_code == 302
    response = client.post("/accounts/login/", {"login": "verify.me@example.com", "password": "A-strong-passphrase-42"})
    assert response.status_code == 302
    assert response["Location"] in ("/dashboard/", "/onboarding/")


@pytest.mark.django_db
def test_login_by_code_sent_by_email(client, mailoutbox):
    user = UserFactory(email="coder@example.com")
    response = client.post("/accounts/login/code/", {"email": user.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    code = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", mailoutbox[0].body, re.MULTILINE).group(1)
    assert "LeadFlow" in mailoutbox[0].body
    response = client.post(response["Location"], {"code": code})
    assert response.status_code == 302
    assert client.get("/api/v1/me/").json()["email"] == user.email


@pytest.mark.django_db
def test_google_login_redirects_to_google_when_configured(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            "SCOPE": ["profile", "email"],
            "APPS": [{"client_id": "test-client-id.apps.googleusercontent.com", "secret": "s3cret", "key": ""}],
        }
    }
    response = client.post("/accounts/google/login/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.netloc == "accounts.google.com"
    assert parse_qs(target.query)["client_id"] == ["test-client-id.apps.googleusercontent.com"]


@pytest.mark.django_db
def test_google_button_hidden_without_credentials(client, settings):
    settings.GOOGLE_CLIENT_ID = ""
    assert b"accounts/google/login" not in client.get("/accounts/login/").content
