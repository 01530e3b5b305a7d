"""Hosted web forms: a public page per form connection, posted through the one intake pipeline.

The payload stored is what the visitor sent plus the evidence of consent we witnessed (the exact consent text
shown, the time, the IP) and the page's attribution (utm_* from its URL, the referrer, the user agent): replaying
the submission later makes the same lead with the same consent record.

A form tied to a campaign also asks for the fields of the campaign's category (every required one, and the
optional ones its builder picked; ``campaigns.forms_schema`` builds them) and posts the lead to the campaign as
the supplier API does (``campaigns.intake.campaign_lead_intake``): checked against the category, then distributed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from campaigns.intake import campaign_lead_intake, campaign_of_organization
from campaigns.models import Campaign
from leadflow.exceptions import ServiceError
from leads.intake.mapping import UTM_FIELDS
from leads.intake.pipeline import IntakeOutcome, lead_intake

from ..constants import (
    HOSTED_FORM_DEFAULT_FIELDS,
    HOSTED_FORM_FIELDS,
    HOSTED_FORM_HONEYPOT,
    HOSTED_FORM_RATE_LIMIT,
    HOSTED_FORM_RATE_WINDOW,
    IntegrationProvider,
)
from ..models import IntegrationConnection
from .connections import connection_record_success, connection_update

logger = logging.getLogger(__name__)


class HostedFormRateLimited(Exception):
    pass


@dataclass(frozen=True)
class HostedFormResult:
    outcome: IntakeOutcome | None  # None for a bot caught by the honeypot (answered as if it worked)
    distribution: dict[str, Any] | None = None  # for a form tied to a campaign, what its distribution did


def hosted_form_options(connection: IntegrationConnection) -> dict[str, Any]:
    options = connection.settings
    fields = [name for name in options.get("fields") or HOSTED_FORM_DEFAULT_FIELDS if name in HOSTED_FORM_FIELDS]
    return {
        "title": options.get("title") or connection.name,
        "fields": fields,
        "consent_text": options.get("consent_text") or "",
        "thank_you_url": options.get("thank_you_url") or "",
        "submit_label": options.get("submit_label") or "Send",
        "campaign_id": options.get("campaign_id"),
        "category_fields": list(options.get("category_fields") or []),
    }


def hosted_form_campaign(connection: IntegrationConnection) -> Campaign | None:
    """The campaign the form posts to (with its category), or ``None``: untied, or the campaign is gone."""
    campaign_id = connection.settings.get("campaign_id")
    if not campaign_id:
        return None
    return campaign_of_organization(organization_id=connection.organization_id, campaign_id=campaign_id)


def honeypot_filled(data) -> bool:
    return bool((data.get(HOSTED_FORM_HONEYPOT) or "").strip())


def hosted_form_configure(
    *,
    connection: IntegrationConnection,
    title: str,
    fields: list[str],
    consent_text: str,
    thank_you_url: str,
    campaign: Campaign | None = None,
    category_fields: list[str] | tuple[str, ...] = (),
    actor=None,
    request=None,
) -> IntegrationConnection:
    """Save a hosted form. ``category_fields`` names the optional fields of the campaign's category it asks for
    too; the required ones are always asked (the category's schema refuses a lead without them)."""
    if connection.provider != IntegrationProvider.FORM:
        raise ServiceError("Only hosted forms have form settings.")
    if campaign is not None and campaign.organization_id != connection.organization_id:
        raise ServiceError("Pick one of this organization's campaigns.", field="campaign")
    if category_fields and campaign is None:
        raise ServiceError("Choose the campaign whose category fields the form asks for.", field="category_fields")
    if campaign is not None:
        optional = {field["name"] for field in campaign.category.fields if not field.get("required")}
        unknown = sorted(set(category_fields) - optional)
        if unknown:
            raise ServiceError(
                f"{campaign.category.name} has no optional field {', '.join(unknown)}.", field="category_fields"
            )
    unknown = [name for name in fields if name not in HOSTED_FORM_FIELDS]
    if unknown or not fields:
        raise ServiceError("Pick at least one of the offered fields.", field="fields")
    if not {"email", "phone"} & set(fields):
        raise ServiceError("Ask for an email or a phone number: a lead needs a way to reach them.", field="fields")
    return connection_update(
        connection=connection,
        settings={
            "title": title.strip()[:200],
            "fields": fields,
            "consent_text": consent_text.strip()[:5000],
            "thank_you_url": thank_you_url.strip()[:1000],
            "campaign_id": campaign.pk if campaign is not None else None,
            "category_fields": [
                field["name"]
                for field in (campaign.category.fields if campaign else [])
                if field["name"] in category_fields
            ],
        },
        actor=actor,
        request=request,
    )


def _rate_limited(connection: IntegrationConnection, ip: str | None) -> bool:
    key = f"integrations:hosted-form:{connection.pk}:{ip or 'unknown'}"
    window = int(HOSTED_FORM_RATE_WINDOW.total_seconds())
    if cache.add(key, 1, timeout=window):
        return False
    try:
        return cache.incr(key) > HOSTED_FORM_RATE_LIMIT
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        return False


def hosted_form_submit(
    *,
    connection: IntegrationConnection,
    data,
    remote_ip: str | None,
    user_agent: str = "",
    referrer: str = "",
    headers=None,
    custom: dict[str, Any] | None = None,
) -> HostedFormResult:
    """One visitor's submission. Raises ``HostedFormRateLimited``; a filled honeypot is dropped silently.

    ``custom`` is the campaign's category fields, parsed by the page (``campaigns.forms_schema``).
    """
    if honeypot_filled(data):
        logger.info("hosted form %s: honeypot filled from %s, dropped", connection.pk, remote_ip)
        return HostedFormResult(outcome=None)
    if _rate_limited(connection, remote_ip):
        raise HostedFormRateLimited
    options = hosted_form_options(connection)
    payload: dict[str, Any] = {"custom": {}}
    for name in options["fields"]:
        value = (data.get(name) or "").strip()
        if name == "message":
            payload["custom"]["message"] = value[:5000]
        else:
            payload[name] = value
    for name in UTM_FIELDS:
        if data.get(f"utm_{name}"):
            payload[f"utm_{name}"] = str(data.get(f"utm_{name}"))[:255]
    if (data.get("landing_page") or "").startswith(("http://", "https://")):
        payload["landing_page"] = data["landing_page"][:1000]
    if referrer.startswith(("http://", "https://")):
        payload["referrer"] = referrer[:1000]
    payload["user_agent"] = user_agent[:512]
    payload["ip_address"] = remote_ip
    if options["consent_text"]:
        given = data.get("consent") in ("on", "1", "true", "yes")
        # What the visitor saw and did, witnessed now: the record a consent audit asks for.
        payload["consent"] = {
            "given": given,
            "text": options["consent_text"],
            "at": timezone.now().isoformat() if given else None,
            "ip": remote_ip if given else None,
            "method": f"LeadFlow hosted form {connection.public_token[:8]}",
        }
    context = {"connection_id": connection.pk, "provider": connection.provider}
    campaign = hosted_form_campaign(connection)
    intake = {"source": IntegrationProvider.FORM, "context": context, "remote_ip": remote_ip, "headers": headers or {}}
    distribution = None
    if campaign is None:
        outcome = lead_intake(organization=connection.organization, payload=payload, **intake)
    else:
        payload["custom"].update(custom or {})
        result = campaign_lead_intake(
            organization=connection.organization, campaign=campaign, payload=payload, **intake
        )
        outcome, distribution = result.outcome, result.distribution
    if outcome.status in ("accepted", "duplicate"):
        connection_record_success(connection=connection)
    return HostedFormResult(outcome=outcome, distribution=distribution)
