"""WhatsApp templates and their approval status synced from the organization's WhatsApp provider: Twilio's Content
API (``GET /v1/ContentAndApprovals``, paged as Twilio pages it) or Meta's business account, both served by local
stand-ins shaped like the providers' documented answers."""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse

from accounts.constants import Role
from leadflow.exceptions import ServiceError
from messaging.constants import TemplateStatus, WhatsAppProvider
from messaging.models import MessageTemplate
from messaging.services.channels import messaging_settings_for, messaging_settings_forget
from messaging.services.templates import templates_sync
from tests.billing.standins import StandIn, serve
from tests.conftest import member_of
from tests.factories import MessageTemplateFactory

from .conftest import META_WABA, TWILIO_SID, TWILIO_TOKEN, meta  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

CONTENT_ORIGIN = "https://content.twilio.com"
WELCOME_SID, PRICE_SID, DRAFT_SID, VISIT_SID = (f"HX{n:032x}" for n in range(1, 5))


def _content(sid: str, name: str, *, language: str = "en", types: dict, approval: dict | None) -> dict:
    """One content as the ContentAndApprovals list answers it."""
    return {
        "date_created": "2026-11-02T10:00:00Z",
        "date_updated": "2026-11-03T10:00:00Z",
        "sid": sid,
        "account_sid": TWILIO_SID,
        "friendly_name": name,
        "language": language,
        "variables": {"1": "Asha", "2": "the 2BHK"},
        "types": types,
        "url": f"{CONTENT_ORIGIN}/v1/Content/{sid}",
        "approval_requests": approval,
    }


def _approval(name: str, status: str, *, category: str = "UTILITY", rejection_reason: str = "") -> dict:
    return {
        "name": name,
        "category": category,
        "content_type": "twilio/text",
        "status": status,
        "rejection_reason": rejection_reason,
        "allow_category_change": True,
    }


@pytest.fixture
def twilio_content(settings):
    """Twilio's Content API: ``pages`` holds the contents of each page; the answer carries Twilio's ``meta`` block,
    whose absolute ``next_page_url`` on Twilio's own origin the SDK follows."""
    stand_in = StandIn()
    stand_in.pages = []
    stand_in.refuse = None

    def listing(recorded, match):
        if stand_in.refuse:
            return stand_in.refuse
        page = int(recorded.query.get("Page", ["0"])[0])
        size = int(recorded.query.get("PageSize", ["50"])[0])
        base = f"{CONTENT_ORIGIN}/v1/ContentAndApprovals?PageSize={size}"
        last = page >= len(stand_in.pages) - 1
        return {
            "meta": {
                "page": page,
                "page_size": size,
                "first_page_url": f"{base}&Page=0",
                "previous_page_url": f"{base}&Page={page - 1}&PageToken=PB{page}" if page else None,
                "url": f"{base}&Page={page}",
                "next_page_url": None if last else f"{base}&Page={page + 1}&PageToken=PA{page}",
                "key": "contents",
            },
            "contents": stand_in.pages[page] if stand_in.pages else [],
        }

    stand_in.route("GET", r"/v1/ContentAndApprovals", listing)
    server = serve(stand_in)
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TWILIO_SID, TWILIO_TOKEN
    settings.TWILIO_CONTENT_API_URL = stand_in.url
    yield stand_in
    server.shutdown()


def _two_pages() -> list[list[dict]]:
    return [
        [
            _content(
                WELCOME_SID,
                "welcome_offer",
                types={"twilio/text": {"body": "Hi {{1}}, thanks for asking about {{2}}."}},
                approval=_approval("welcome_offer", "approved", category="MARKETING"),
            ),
            _content(
                PRICE_SID,
                "price_drop",
                types={"twilio/media": {"body": "{{1}}: prices dropped!", "media": ["https://example.com/a.jpg"]}},
                approval=_approval(
                    "price_drop", "rejected", rejection_reason="Variables can't be at the start of the message."
                ),
            ),
            # Made in Twilio's console but never submitted to WhatsApp: not a WhatsApp template.
            _content(
                DRAFT_SID, "draft", types={"twilio/text": {"body": "Draft"}}, approval=_approval("draft", "unsubmitted")
            ),
        ],
        [
            _content(
                VISIT_SID,
                "site_visit",
                language="hi",
                types={"twilio/text": {"body": "Namaste {{1}}, aapki visit {{2}} ko hai."}},
                approval=_approval("site_visit", "pending"),
            )
        ],
    ]


def test_twilio_templates_and_their_approval_come_from_the_content_api(organization, twilio_content):
    twilio_content.pages = _two_pages()

    assert templates_sync(organization=organization) == 3

    calls = twilio_content.calls("GET", "/v1/ContentAndApprovals")
    assert [call.query.get("Page", ["0"])[0] for call in calls] == ["0", "1"]  # the second page was followed
    expected = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert calls[0].headers["Authorization"] == expected
    found = {t.name: t for t in MessageTemplate.objects.unscoped().filter(organization=organization)}
    assert set(found) == {"welcome_offer", "price_drop", "site_visit"}
    welcome = found["welcome_offer"]
    assert (welcome.channel, welcome.status, welcome.category) == ("whatsapp", TemplateStatus.APPROVED, "marketing")
    # What a send names as ContentSid.
    assert welcome.provider_template_id == WELCOME_SID
    assert welcome.body == "Hi {{1}}, thanks for asking about {{2}}."
    assert len(welcome.variables) == 2
    assert found["price_drop"].status == TemplateStatus.REJECTED
    assert found["price_drop"].rejection_reason == "Variables can't be at the start of the message."
    assert found["price_drop"].body == "{{1}}: prices dropped!"
    assert (found["site_visit"].status, found["site_visit"].language) == (TemplateStatus.PENDING, "hi")


def test_a_second_sync_updates_in_place_and_counts_only_what_changed(organization, twilio_content):
    # A template written in LeadFlow first, then created in Twilio under the same name: the sync adopts it.
    mine = MessageTemplateFactory(
        organization=organization, channel="whatsapp", name="welcome_offer", language="en", status="pending"
    )
    twilio_content.pages = _two_pages()
    assert templates_sync(organization=organization) == 3
    mine.refresh_from_db()
    assert (mine.status, mine.provider_template_id) == (TemplateStatus.APPROVED, WELCOME_SID)

    # Nothing moved: nothing counted. Then WhatsApp approves the visit template and it is renamed in Twilio.
    assert templates_sync(organization=organization) == 0
    visit = twilio_content.pages[1][0]
    visit["approval_requests"] = _approval("site_visit_v2", "approved")
    assert templates_sync(organization=organization) == 1
    synced = MessageTemplate.objects.unscoped().get(organization=organization, provider_template_id=VISIT_SID)
    assert synced.status == TemplateStatus.APPROVED
    assert MessageTemplate.objects.unscoped().filter(organization=organization).count() == 3


def test_twilio_refusing_the_listing_is_a_clear_error_and_changes_nothing(organization, twilio_content):
    twilio_content.refuse = (
        401,
        {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        },
    )
    with pytest.raises(ServiceError, match=r"Twilio did not list the templates: Twilio answered 401: Authenticate$"):
        templates_sync(organization=organization)
    assert not MessageTemplate.objects.unscoped().filter(organization=organization).exists()


def test_without_twilio_credentials_the_sync_says_what_to_set(organization, settings):
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = ""
    with pytest.raises(ServiceError, match="TWILIO_ACCOUNT_SID"):
        templates_sync(organization=organization)


def test_meta_templates_come_from_the_business_account(organization, meta, settings):  # noqa: F811
    row = messaging_settings_for(organization.pk)
    row.whatsapp_provider = WhatsAppProvider.META
    row.meta_business_account_id = META_WABA
    row.save()
    messaging_settings_forget()
    settings.WHATSAPP_ACCESS_TOKEN = "meta-access-token"
    meta.templates = [
        {
            "name": "visit_reminder",
            "language": "en_US",
            "status": "APPROVED",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, see you at {{2}}."}],
            "id": "1234567890",
        },
        {
            "name": "festive_offer",
            "language": "en_US",
            "status": "REJECTED",
            "category": "MARKETING",
            "rejected_reason": "PROMOTIONAL",
            "components": [{"type": "BODY", "text": "Offer!"}],
            "id": "1234567891",
        },
    ]

    assert templates_sync(organization=organization) == 2
    found = {t.name: t for t in MessageTemplate.objects.unscoped().filter(organization=organization)}
    assert (found["visit_reminder"].status, found["visit_reminder"].provider_template_id) == (
        "approved",
        "visit_reminder",
    )
    assert len(found["visit_reminder"].variables) == 2
    assert (found["festive_offer"].status, found["festive_offer"].rejection_reason) == ("rejected", "PROMOTIONAL")
    assert meta.calls("GET", f"/v21.0/{META_WABA}/message_templates")[0].headers["Authorization"] == (
        "Bearer meta-access-token"
    )


def test_the_templates_page_syncs_from_the_organizations_provider(client, organization, twilio_content):
    twilio_content.pages = _two_pages()
    client.force_login(member_of(organization, Role.ADMIN))
    page = client.get(reverse("messaging:templates"))
    assert "Sync WhatsApp templates from Twilio" in page.content.decode()
    response = client.post(reverse("messaging:template_sync"), follow=True)
    assert "Synced from Twilio: 3 templates added or changed." in response.content.decode()
    assert MessageTemplate.objects.unscoped().filter(organization=organization).count() == 3
