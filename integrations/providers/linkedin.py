"""LinkedIn Lead Gen: form responses pulled from the REST API (``/rest/leadFormResponses``) on a schedule, answers
mapped to lead fields through each form's ``predefinedField`` questions.

Requests carry ``Authorization: Bearer``, ``LinkedIn-Version`` and ``X-Restli-Protocol-Version: 2.0.0``; the base
URL and version come from settings (``LINKEDIN_API_URL``, ``LINKEDIN_API_VERSION``) so tests use a local stand-in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from leads.intake.mapping import register_mapper, standard_shape

from .http import provider_client

TEST_LEAD_TAG = "test-lead"
PAGE_SIZE = 100
# LinkedIn's predefined fields → our standard fields.
PREDEFINED_FIELDS = {
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "WORK_EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "WORK_PHONE_NUMBER": "phone",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
    "CITY": "city",
    "STATE": "state",
    "COUNTRY": "country",
    "POSTAL_CODE": "postal_code",
    "ZIP_CODE": "postal_code",
}
_FORM_ID = re.compile(r"leadGenForm:(\d+)")


class LinkedInError(Exception):
    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def is_auth_error(self) -> bool:
        return self.status in (401, 403)


def _request(path: str, *, access_token: str, query: str = "") -> dict:
    url = f"{settings.LINKEDIN_API_URL}/rest/{path.lstrip('/')}" + (f"?{query}" if query else "")
    headers = {
        "Authorization": f"Bearer {access_token}",
        "LinkedIn-Version": settings.LINKEDIN_API_VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }
    try:
        response = provider_client().get(url, headers=headers, timeout=settings.LINKEDIN_API_TIMEOUT_S)
    except httpx.HTTPError as error:
        raise LinkedInError(f"LinkedIn unreachable: {type(error).__name__}: {error}") from error
    if response.status_code >= 400:
        try:
            message = response.json().get("message") or response.text[:200]
        except ValueError:
            message = response.text[:200]
        raise LinkedInError(f"LinkedIn API error {response.status_code}: {message}", status=response.status_code)
    return response.json()


def sponsored_account_urn(account: str) -> str:
    account = str(account).strip()
    return account if account.startswith("urn:") else f"urn:li:sponsoredAccount:{account}"


def form_responses_since(*, access_token: str, sponsored_account: str, since_ms: int, until_ms: int) -> Iterator[dict]:
    """Sponsored form responses submitted in [since_ms, until_ms), page by page (Rest.li 2.0 query encoding)."""
    owner = quote(sponsored_account_urn(sponsored_account), safe="")
    start = 0
    while True:
        query = (
            f"q=owner&owner=(sponsoredAccount:{owner})&leadType=(leadType:SPONSORED)"
            f"&submittedAtTimeRange=(start:{since_ms},end:{until_ms})&start={start}&count={PAGE_SIZE}"
        )
        body = _request("leadFormResponses", access_token=access_token, query=query)
        elements = body.get("elements") or []
        yield from elements
        total = (body.get("paging") or {}).get("total")
        start += len(elements)
        if not elements or (total is not None and start >= total) or len(elements) < PAGE_SIZE:
            return


def lead_form(*, access_token: str, form_id: str) -> dict:
    return _request(f"leadForms/{form_id}", access_token=access_token)


def form_id_of(response: Mapping[str, Any]) -> str:
    match = _FORM_ID.search(str(response.get("versionedLeadGenFormUrn") or response.get("leadGenFormUrn") or ""))
    return match.group(1) if match else ""


def question_fields(form: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """questionId (as a string) → {"field": standard field or "", "label": the question's name}."""
    found = {}
    for question in (form.get("content") or {}).get("questions") or []:
        if not isinstance(question, Mapping) or question.get("questionId") is None:
            continue
        label = question.get("name") or ((question.get("question") or {}).get("localized") or {}).get("en_US") or ""
        found[str(question["questionId"])] = {
            "field": PREDEFINED_FIELDS.get(str(question.get("predefinedField") or ""), ""),
            "label": str(label or f"question_{question['questionId']}"),
        }
    return found


def _answer(details: Mapping[str, Any]) -> Any:
    if "textQuestionAnswer" in details:
        return (details["textQuestionAnswer"] or {}).get("answer")
    if "multipleChoiceAnswer" in details:
        return (details["multipleChoiceAnswer"] or {}).get("options")
    return next(iter(details.values()), None) if details else None


@register_mapper("linkedin")
def map_linkedin_response(payload: Mapping[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """A form response; ``context["questions"]`` holds its form's question → field table, taken when it was synced."""
    if "formResponse" not in payload:
        return standard_shape(payload)  # already in the standard shape (manual entry, imports, the demo)
    questions = context.get("questions") or {}
    shaped: dict[str, Any] = {"custom": {}}
    for answer in (payload.get("formResponse") or {}).get("answers") or []:
        if not isinstance(answer, Mapping):
            continue
        question = questions.get(str(answer.get("questionId")), {})
        value = _answer(answer.get("answerDetails") or {})
        if question.get("field") and not shaped.get(question["field"]):
            shaped[question["field"]] = value
        else:
            shaped["custom"][question.get("label") or f"question_{answer.get('questionId')}"] = value
    consents = (payload.get("formResponse") or {}).get("consentResponses") or []
    if consents:
        shaped["custom"]["linkedin_consents"] = consents
        shaped["consent"] = {"given": all(c.get("accepted") for c in consents if isinstance(c, Mapping))}
    shaped["external_id"] = str(payload.get("id") or "")
    shaped["form_id"] = form_id_of(payload)
    metadata = ((payload.get("leadMetadata") or {}).get("sponsoredLeadMetadata") or {}).get("campaign") or ""
    shaped["campaign_id"] = str(metadata).rsplit(":", 1)[-1] if metadata else ""
    creative = (payload.get("associatedEntity") or {}).get("associatedCreative") or ""
    shaped["ad_id"] = str(creative).rsplit(":", 1)[-1] if creative else ""
    shaped["utm_source"] = "linkedin"
    shaped["utm_medium"] = "paid_social"
    if payload.get("submittedAt"):
        shaped["custom"]["linkedin_submitted_at"] = payload["submittedAt"]
    if payload.get("testLead") is True:
        shaped["tags"] = [TEST_LEAD_TAG]
        shaped["custom"]["linkedin_test_lead"] = True
    return shaped
