"""Finding a person in an organization and gathering everything about them, through the registered sources."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope
from leads.intake.normalize import NormalizationError, normalize_email, normalize_phone
from leads.models import Lead

from .registry import PersonTarget, person_data_sources


def person_target(*, organization, email: str = "", phone: str = "") -> PersonTarget:
    """The normalized identifiers and the organization's leads carrying either of them."""
    try:
        email = normalize_email(email) if email else ""
    except NormalizationError as error:
        raise ServiceError(str(error), field="email") from None
    try:
        phone = normalize_phone(phone, region=organization.default_phone_region) if phone else ""
    except NormalizationError as error:
        raise ServiceError(str(error), field="phone") from None
    if not (email or phone):
        raise ServiceError("Give the person's email address or phone number.", field="email")
    match = Q()
    if email:
        match |= Q(email=email)
    if phone:
        match |= Q(phone=phone)
    lead_ids = tuple(
        Lead.objects.unscoped().filter(match, organization=organization).order_by("pk").values_list("pk", flat=True)
    )
    return PersonTarget(organization=organization, email=email, phone=phone, lead_ids=lead_ids)


def person_data(target: PersonTarget) -> dict[str, list[dict[str, Any]]]:
    # In the organization's scope: related rows (prefetches, reverse relations) go through scoped managers too.
    with organization_scope(target.organization):
        return {source.key: source.export(target) for source in person_data_sources()}


def person_data_counts(target: PersonTarget) -> list[tuple[str, str, int]]:
    """(key, label, rows) per source: what an export would hold and an erasure would touch."""
    return [
        (key, next(s.label for s in person_data_sources() if s.key == key), len(rows))
        for key, rows in person_data(target).items()
    ]


def person_export_document(target: PersonTarget) -> dict[str, Any]:
    return {
        "generated_at": timezone.now(),
        "organization": {
            "id": target.organization.pk,
            "name": target.organization.name,
            "slug": target.organization.slug,
        },
        "person": {"email": target.email or None, "phone": target.phone or None},
        "sources": person_data(target),
    }
