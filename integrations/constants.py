"""Choices and fixed values of the integrations app."""

from __future__ import annotations

from datetime import timedelta

from django.db import models


class WebhookEventType(models.TextChoices):
    """Every event an organization can subscribe a URL to. Later issues add theirs here, and only here."""

    LEAD_CREATED = "lead.created", "Lead created"
    LEAD_UPDATED = "lead.updated", "Lead updated"
    LEAD_STAGE_CHANGED = "lead.stage_changed", "Lead stage changed"
    LEAD_ASSIGNED = "lead.assigned", "Lead assigned"
    LEAD_DUPLICATE = "lead.duplicate", "Duplicate lead received"


# Sent only by "Send test"; never subscribable, so it is not among the choices above.
WEBHOOK_TEST_EVENT = "webhook.test"


class WebhookEndpointPurpose(models.TextChoices):
    """Who an endpoint belongs to. The delivery machinery serves all of them; pages list each purpose separately."""

    SUBSCRIPTION = "subscription", "Organization subscription"
    # A buyer's delivery methods (campaigns.DeliveryMethod): the sale's lead, signed, or rendered into their CRM.
    BUYER_WEBHOOK = "buyer_webhook", "Buyer webhook"
    BUYER_CRM = "buyer_crm", "Buyer CRM post"
    # An automation's "call a webhook" step (messaging.AutomationStep).
    AUTOMATION = "automation", "Automation step"


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # gave up: retries exhausted, a non-retryable answer, or the endpoint was disabled


class WebhookAttemptTrigger(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    REPLAY = "replay", "Manual replay"


# Standard Webhooks' suggested schedule: the delay before each attempt after the first, about three days in all.
WEBHOOK_RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
WEBHOOK_MAX_ATTEMPTS = len(WEBHOOK_RETRY_DELAYS) + 1
# Up to this fraction is added to each delay so that endpoints that failed together do not retry in lockstep.
WEBHOOK_RETRY_JITTER = 0.1
# A Retry-After longer than this is not honoured as such: the normal schedule resumes instead.
WEBHOOK_MAX_RETRY_AFTER = timedelta(hours=24)
# An endpoint whose every attempt has failed for this long is disabled and its owner told (Svix's rule).
WEBHOOK_DISABLE_AFTER_FAILING_FOR = timedelta(days=5)
WEBHOOK_RESPONSE_EXCERPT_CHARS = 1000
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
WEBHOOK_SECRET_BYTES = 32


# Inbound connections ------------------------------------------------------------------------------------------------


class IntegrationProvider(models.TextChoices):
    """Where a connection's leads come from. Each value is also the ``LeadSource`` its leads carry."""

    FACEBOOK = "facebook", "Facebook Lead Ads"
    GOOGLE_ADS = "google_ads", "Google Ads lead forms"
    LINKEDIN = "linkedin", "LinkedIn Lead Gen"
    WEBHOOK = "webhook", "Generic webhook (Zapier, Pabbly, n8n, Make)"
    FORM = "form", "Hosted web form"


class ConnectionStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    ERROR = "error", "Needs attention"  # still receives: the status is health, never a reason to drop a lead
    DISCONNECTED = "disconnected", "Disconnected"  # turned off by the organization: its URLs answer 404


# A connection whose last this-many interactions all failed turns to error and its owners are emailed; an
# authentication error (an expired or revoked token) does so at once, since retrying cannot fix it.
CONNECTION_ERROR_THRESHOLD = 5
CONNECTION_ERROR_MAX_CHARS = 2000
CONNECTION_PUBLIC_TOKEN_BYTES = 24

# Facebook lead fetches that fail for a reason that may pass (5xx, timeouts, rate limits) are retried after these
# delays; after the last one the submission is left failed (replayable) and the connection records the failure.
# Meta itself re-sends an unanswered notification for up to 36 hours, and the backfill catches anything dropped.
FACEBOOK_FETCH_RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
# Graph error codes meaning the token no longer works (190: invalid or expired; 102: session; 10/200: permission).
FACEBOOK_AUTH_ERROR_CODES = frozenset({190, 102, 10, 200})
# The backfill asks for leads created since the last sync minus this margin (clocks, Meta's own indexing delay).
FACEBOOK_SYNC_OVERLAP = timedelta(minutes=10)
FACEBOOK_LEAD_FIELDS = "id,created_time,ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,form_id,platform,is_organic,field_data,custom_disclaimer_responses,partner_name"

# Hosted web forms: the fields a form can ask for, and how often one visitor may submit one form.
HOSTED_FORM_FIELDS = {
    "full_name": "Name",
    "email": "Email",
    "phone": "Phone",
    "company": "Company",
    "city": "City",
    "message": "Message",
}
HOSTED_FORM_DEFAULT_FIELDS = ("full_name", "email", "phone")
HOSTED_FORM_RATE_LIMIT = 5
HOSTED_FORM_RATE_WINDOW = timedelta(minutes=10)
# The honeypot: a field people never see (hidden by CSS) and bots fill in.
HOSTED_FORM_HONEYPOT = "website"
LINKEDIN_SYNC_OVERLAP = timedelta(minutes=10)


# Meta's Conversions API for CRM (Conversion Leads) --------------------------------------------------------------------


class ConversionEventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # gave up: retries spent, Meta refused it, or the token stopped working; replayable
    SKIPPED = "skipped", "Skipped"  # not sent: the connection was disconnected or turned conversions off meanwhile


# The delay before each try after the first; after the last the event is left failed (replayable from the admin).
CONVERSION_RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
CONVERSION_MAX_ATTEMPTS = len(CONVERSION_RETRY_DELAYS) + 1
# Meta discards CRM events whose event_time is more than 7 days before they are sent (payload specification).
CONVERSION_MAX_EVENT_AGE = timedelta(days=7)
# custom_data.lead_event_source: "the name of the tool where the leads are coming from" (payload specification).
CONVERSION_LEAD_EVENT_SOURCE = "LeadFlow"
CONVERSION_RESPONSE_EXCERPT_CHARS = 1000
