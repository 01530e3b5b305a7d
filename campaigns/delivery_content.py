"""What a buyer receives for a sale: the lead as buyers see it (never the seller's stage, owner or score), the
text of an email, SMS or WhatsApp alert, and a CRM post rendered from the buyer's field template."""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from leads.intake.mapping import CONTACT_FIELDS

SALE_WEBHOOK_EVENT = "lead.sold"

# Placeholders a CRM field template may use: {first_name}, {custom.age}, {campaign} …
LEAD_PLACEHOLDERS = (*CONTACT_FIELDS, "received_at", "consent_given")
SALE_PLACEHOLDERS = (
    "lead_id",
    "sale_id",
    "price",
    "currency",
    "sold_at",
    "campaign",
    "campaign_id",
    "buyer",
    "buyer_id",
)
PLACEHOLDERS = frozenset(LEAD_PLACEHOLDERS + SALE_PLACEHOLDERS)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_ -]+)?)\}")
MAX_TEMPLATE_FIELDS = 100


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def buyer_lead_data(lead) -> dict[str, Any]:
    """A sold lead as its buyer receives it: contact, location, custom fields and consent."""
    return {
        "id": lead.pk,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "full_name": lead.full_name,
        "email": lead.email,
        "phone": lead.phone,
        "company": lead.company,
        "job_title": lead.job_title,
        "city": lead.city,
        "state": lead.state,
        "postal_code": lead.postal_code,
        "country": lead.country,
        "custom": lead.custom,
        "consent": {
            "given": lead.consent_given,
            "text": lead.consent_text,
            "at": _iso(lead.consent_at),
            "method": lead.consent_method,
            "certificate_url": lead.consent_certificate_url,
        },
        "received_at": _iso(lead.received_at),
    }


def sale_webhook_data(sale) -> dict[str, Any]:
    """``data`` of a ``lead.sold`` webhook. Expects ``lead``, ``campaign`` and ``buyer__organization`` loaded."""
    return {
        "sale": {
            "id": sale.pk,
            "price": str(sale.price),
            "currency": sale.buyer.organization.currency,
            "sold_at": _iso(sale.created_at),
            "campaign": {"id": sale.campaign_id, "name": sale.campaign.name},
            "buyer": {"id": sale.buyer_id, "name": sale.buyer.name},
        },
        "lead": buyer_lead_data(sale.lead),
    }


def _placeholder_values(sale) -> dict[str, Any]:
    lead = sale.lead
    values: dict[str, Any] = {name: getattr(lead, name) for name in LEAD_PLACEHOLDERS}
    values["received_at"] = _iso(lead.received_at)
    values.update(
        lead_id=lead.pk,
        sale_id=sale.pk,
        price=sale.price,
        currency=sale.buyer.organization.currency,
        sold_at=_iso(sale.created_at),
        campaign=sale.campaign.name,
        campaign_id=sale.campaign_id,
        buyer=sale.buyer.name,
        buyer_id=sale.buyer_id,
    )
    return values


def _lookup(name: str, values: dict[str, Any], custom: dict[str, Any]) -> Any:
    if name.startswith("custom."):
        return custom.get(name[len("custom.") :])
    return values.get(name)


def field_template_errors(template: Any) -> list[str]:
    """Every problem with a CRM field template, naming the field at fault."""
    if not isinstance(template, dict) or not template:
        return ['The template is an object of CRM field → value, e.g. {"FirstName": "{first_name}"}.']
    if len(template) > MAX_TEMPLATE_FIELDS:
        return [f"A template has at most {MAX_TEMPLATE_FIELDS} fields."]
    errors = []
    for field, value in template.items():
        if not str(field).strip():
            errors.append("Every field needs a name.")
        if not isinstance(value, str | int | float | bool) and value is not None:
            errors.append(f"“{field}”: a value is text with placeholders, a number, true/false or null.")
            continue
        if isinstance(value, str):
            unknown = [
                name
                for name in _PLACEHOLDER.findall(value)
                if not name.startswith("custom.") and name not in PLACEHOLDERS
            ]
            if unknown:
                errors.append(f"“{field}”: unknown placeholders {', '.join('{' + n + '}' for n in unknown)}.")
    return errors


def field_template_render(template: dict[str, Any], sale) -> dict[str, Any]:
    """The CRM body: each value's placeholders filled in. A value that is exactly one placeholder keeps the
    field's own type (a number stays a number, a missing custom field is null)."""
    values, custom = _placeholder_values(sale), sale.lead.custom or {}
    body: dict[str, Any] = {}
    for field, value in template.items():
        if not isinstance(value, str):
            body[field] = value
            continue
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            found = _lookup(whole.group(1), values, custom)
            body[field] = str(found) if isinstance(found, Decimal) else found
            continue
        body[field] = _PLACEHOLDER.sub(
            lambda match: "" if (found := _lookup(match.group(1), values, custom)) is None else str(found), value
        )
    return body


def sale_alert_text(sale) -> str:
    """An SMS or WhatsApp alert: who, how to reach them, from which campaign (short: one SMS segment if it can)."""
    lead = sale.lead
    where = ", ".join(part for part in (lead.city, lead.state) if part)
    parts = [f"New lead ({sale.campaign.name}): {lead.full_name or 'no name'}", lead.phone, lead.email, where]
    return " · ".join(part for part in parts if part)[:600]


def sale_alert_variables(sale) -> dict[str, str]:
    """WhatsApp template variables, in the order an approved template numbers them."""
    lead = sale.lead
    return {"1": lead.full_name or "-", "2": lead.phone or "-", "3": lead.email or "-", "4": sale.campaign.name}


def sale_email(sale) -> tuple[str, str]:
    """Subject and plain-text body of the email a buyer gets for a sale."""
    lead = sale.lead
    lines = [
        f"You have a new lead from {sale.campaign.name}.",
        "",
        f"Name: {lead.full_name or '-'}",
        f"Phone: {lead.phone or '-'}",
        f"Email: {lead.email or '-'}",
    ]
    for label, value in (("Company", lead.company), ("City", lead.city), ("State", lead.state)):
        if value:
            lines.append(f"{label}: {value}")
    for name, value in (lead.custom or {}).items():
        lines.append(f"{name}: {value}")
    if lead.consent_given:
        lines += ["", f"Consent: {lead.consent_text or 'given'}"]
    lines += ["", f"Price: {sale.price} {sale.buyer.organization.currency}"]
    with contextlib.suppress(NoReverseMatch):
        lines.append(f"Your leads: {settings.SITE_URL}{reverse('portal:leads')}")
    return f"New lead: {lead.full_name or lead.email or lead.phone}", "\n".join(lines)
