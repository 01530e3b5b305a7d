"""Facebook (Meta) Lead Ads: the webhook's signature, the Graph API calls we make, and the lead → standard shape.

Notifications carry ids only; the lead is fetched from the Graph API with the page's access token. Ids are
compared as strings (they can exceed 2^53). The Graph API's base URL and version come from settings
(``FACEBOOK_GRAPH_URL``, ``FACEBOOK_GRAPH_VERSION``) so tests point them at a local stand-in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from leads.intake.mapping import CONTACT_FIELDS, canonical_key, register_mapper, standard_shape
from leads.intake.normalize import NormalizationError

from ..constants import FACEBOOK_AUTH_ERROR_CODES, FACEBOOK_LEAD_FIELDS
from .http import provider_client

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
# Graph lead fields kept in the lead's custom fields, prefixed "facebook_".
EXTRA_FIELDS = ("adset_id", "adset_name", "ad_name", "campaign_name", "platform", "is_organic", "partner_name")


# Signatures -----------------------------------------------------------------------------------------------------


def app_signature(*, app_secret: str, body: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def app_signature_valid(*, app_secret: str, body: bytes, header: str | None) -> bool:
    if not app_secret or not header:
        return False
    expected = app_signature(app_secret=app_secret, body=body)
    return hmac.compare_digest(header.strip().lower().encode(), expected.encode())


# The Graph API ---------------------------------------------------------------------------------------------------


class GraphError(Exception):
    def __init__(self, message: str, *, code: int | None = None, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable

    @property
    def is_auth_error(self) -> bool:
        return self.code in FACEBOOK_AUTH_ERROR_CODES or self.status == 401


def graph_url(path: str) -> str:
    return f"{settings.FACEBOOK_GRAPH_URL}/v{settings.FACEBOOK_GRAPH_VERSION}/{path.lstrip('/')}"


def _graph_error(response: httpx.Response) -> GraphError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code")
    message = error.get("message") or f"HTTP {response.status_code}"
    # Rate limits (4, 17, 32, 613) and server errors pass; other 4xx (bad id, no permission, bad token) do not.
    retryable = response.status_code >= 500 or response.status_code == 429 or code in (1, 2, 4, 17, 32, 341, 613)
    graph_error = GraphError(
        f"Graph API error {code or response.status_code}: {message}",
        code=code,
        status=response.status_code,
        retryable=retryable,
    )
    if graph_error.is_auth_error:
        graph_error.retryable = False
    return graph_error


def graph_request(method: str, url_or_path: str, *, access_token: str, params: dict | None = None) -> dict:
    url = url_or_path if url_or_path.startswith("http") else graph_url(url_or_path)
    query = dict(params or {})
    if "access_token=" not in url:
        query["access_token"] = access_token
    try:
        response = provider_client().request(method, url, params=query, timeout=settings.FACEBOOK_GRAPH_TIMEOUT_S)
    except httpx.HTTPError as error:
        raise GraphError(f"Graph API unreachable: {type(error).__name__}: {error}") from error
    if response.status_code >= 400:
        raise _graph_error(response)
    try:
        return response.json()
    except ValueError as error:
        raise GraphError(f"Graph API answered something that is not JSON (HTTP {response.status_code})") from error


def lead_fetch(*, leadgen_id: str, access_token: str) -> dict:
    return graph_request("GET", str(leadgen_id), access_token=access_token, params={"fields": FACEBOOK_LEAD_FIELDS})


def page_fetch(*, access_token: str) -> dict:
    """The page a page access token belongs to: ``{"id", "name"}``."""
    return graph_request("GET", "me", access_token=access_token, params={"fields": "id,name"})


def page_subscribe(*, page_id: str, access_token: str) -> dict:
    return graph_request(
        "POST", f"{page_id}/subscribed_apps", access_token=access_token, params={"subscribed_fields": "leadgen"}
    )


def _paged(path: str, *, access_token: str, params: dict) -> Iterator[dict]:
    body = graph_request("GET", path, access_token=access_token, params=params)
    while True:
        yield from body.get("data") or []
        next_url = (body.get("paging") or {}).get("next")
        if not next_url:
            return
        body = graph_request("GET", next_url, access_token=access_token)


def page_forms(*, page_id: str, access_token: str) -> Iterator[dict]:
    return _paged(f"{page_id}/leadgen_forms", access_token=access_token, params={"fields": "id,name,status"})


def form_leads_since(*, form_id: str, access_token: str, since_unix: int) -> Iterator[dict]:
    filtering = [{"field": "time_created", "operator": "GREATER_THAN", "value": since_unix}]
    return _paged(
        f"{form_id}/leads",
        access_token=access_token,
        params={"fields": FACEBOOK_LEAD_FIELDS, "filtering": json.dumps(filtering), "limit": 100},
    )


@dataclass(frozen=True)
class LeadgenChange:
    """One ``leadgen`` change of a notification, ids as strings."""

    page_id: str
    leadgen_id: str
    form_id: str
    ad_id: str
    adgroup_id: str
    created_time: str

    def as_dict(self) -> dict[str, str]:
        return {
            "page_id": self.page_id,
            "leadgen_id": self.leadgen_id,
            "form_id": self.form_id,
            "ad_id": self.ad_id,
            "adgroup_id": self.adgroup_id,
            "created_time": self.created_time,
        }


def _id(value: Any) -> str:
    return "" if value is None else str(value)


def leadgen_changes(notification: Any) -> list[LeadgenChange]:
    """Every ``leadgen`` change of a notification, however many entries and changes it batches."""
    if not isinstance(notification, Mapping) or notification.get("object") != "page":
        return []
    found = []
    for entry in notification.get("entry") or []:
        if not isinstance(entry, Mapping):
            continue
        for change in entry.get("changes") or []:
            if not isinstance(change, Mapping) or change.get("field") != "leadgen":
                continue
            value = change.get("value") or {}
            if not isinstance(value, Mapping) or not value.get("leadgen_id"):
                continue
            found.append(
                LeadgenChange(
                    page_id=_id(value.get("page_id") or entry.get("id")),
                    leadgen_id=_id(value.get("leadgen_id")),
                    form_id=_id(value.get("form_id")),
                    ad_id=_id(value.get("ad_id")),
                    adgroup_id=_id(value.get("adgroup_id")),
                    created_time=_id(value.get("created_time")),
                )
            )
    return found


def parse_ids_preserving(raw_body: bytes | str) -> Any:
    """JSON with integers kept as strings: Meta's ids can exceed 2^53, which JavaScript-minded tools round."""
    return json.loads(raw_body, parse_int=str)


# The lead → the intake's standard shape ----------------------------------------------------------------------------


def _answer(values: Any) -> Any:
    if isinstance(values, list):
        values = [value for value in values if value not in (None, "")]
        return values[0] if len(values) == 1 else ", ".join(str(v) for v in values) if values else ""
    return values


def lead_to_standard_shape(lead: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {"custom": {}}
    custom = shaped["custom"]
    for item in lead.get("field_data") or []:
        if not isinstance(item, Mapping) or not item.get("name"):
            continue
        name = str(item["name"])
        key = canonical_key(name)
        value = _answer(item.get("values"))
        if key in CONTACT_FIELDS:
            shaped[key] = value
        else:
            custom[name] = value
    shaped["external_id"] = _id(lead.get("id") or context.get("leadgen_id"))
    shaped["ad_id"] = _id(lead.get("ad_id") or context.get("ad_id"))
    shaped["form_id"] = _id(lead.get("form_id") or context.get("form_id"))
    shaped["campaign_id"] = _id(lead.get("campaign_id"))
    shaped["utm_source"] = "facebook"
    shaped["utm_medium"] = "paid_social" if not lead.get("is_organic") else "social"
    if lead.get("campaign_name"):
        shaped["utm_campaign"] = str(lead["campaign_name"])
    for name in EXTRA_FIELDS:
        if lead.get(name) not in (None, ""):
            custom[f"facebook_{name}"] = lead[name]
    if context.get("page_id"):
        custom["facebook_page_id"] = _id(context["page_id"])
    if lead.get("created_time"):
        custom["facebook_created_time"] = str(lead["created_time"])
    disclaimers = lead.get("custom_disclaimer_responses")
    if isinstance(disclaimers, list) and disclaimers:
        custom["facebook_disclaimer_responses"] = disclaimers
    return shaped


@register_mapper("facebook")
def map_facebook_lead(payload: Mapping[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The lead as Graph returns it. Given the stored notification instead (a replay, or the stuck-submission
    sweep), the lead is fetched first with the connection's page token."""
    if context.get("signature_valid") is False:
        raise NormalizationError("The X-Hub-Signature-256 did not verify: the notification was stored, not processed.")
    if "field_data" not in payload:
        if not payload.get("leadgen_id"):
            # A lead already in the standard shape with source "facebook" (manual entry, imports, the demo).
            return standard_shape(payload)
        payload = _fetch_for_replay(payload, context)
    return lead_to_standard_shape(payload, context)


def _fetch_for_replay(change: Mapping[str, Any], context: Mapping[str, Any]) -> dict:
    from ..models import IntegrationConnection

    connection = IntegrationConnection.objects.filter(pk=context.get("connection_id")).first()
    if connection is None or not connection.credential("page_access_token"):
        raise NormalizationError("The Facebook page this lead came from is no longer connected.")
    try:
        return lead_fetch(leadgen_id=_id(change["leadgen_id"]), access_token=connection.credential("page_access_token"))
    except GraphError as error:
        raise NormalizationError(f"Facebook did not return the lead: {error.message}") from None


# Conversions API for CRM ("Conversion Leads") ------------------------------------------------------------------------


def crm_event(*, leadgen_id: str, event_name: str, event_time: int, lead_event_source: str) -> dict[str, Any]:
    """One CRM stage event, shaped as Meta's Conversion Leads payload specification documents it
    (developers.facebook.com/docs/marketing-api/conversions-api/conversion-leads-integration/payload-specification):
    ``event_name`` is the CRM stage, free form; ``event_time`` Unix seconds, at most 7 days old and after the lead
    was generated; ``action_source`` is ``system_generated``; ``user_data.lead_id`` is the leadgen id, an integer,
    not hashed; ``custom_data.event_source`` is ``crm`` and ``custom_data.lead_event_source`` names the CRM."""
    return {
        "event_name": event_name,
        "event_time": event_time,
        "action_source": "system_generated",
        # Python writes big integers exactly, so the id is sent as the number Meta documents, never rounded.
        "user_data": {"lead_id": int(leadgen_id)},
        "custom_data": {"event_source": "crm", "lead_event_source": lead_event_source},
    }


def crm_events_send(*, dataset_id: str, access_token: str, events: list[dict[str, Any]]) -> dict:
    """``POST /{dataset_id}/events`` with ``data`` (a JSON-encoded list) and the access token, as the Conversions
    API's "Using the API" page documents; Meta answers ``{"events_received", "messages", "fbtrace_id"}``. The
    parameters travel in the query string, which the Graph API reads for POSTs too (as ``page_subscribe`` does)."""
    return graph_request(
        "POST",
        f"{dataset_id}/events",
        access_token=access_token,
        params={"data": json.dumps(events, separators=(",", ":"))},
    )
