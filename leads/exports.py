"""CSV export, streamed row by row so a million leads never sit in memory."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.utils import timezone

COLUMNS = [
    ("id", "id"),
    ("received_at", "received_at"),
    ("source", "source"),
    ("external_id", "external_id"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("full_name", "full_name"),
    ("email", "email"),
    ("phone", "phone"),
    ("company", "company"),
    ("job_title", "job_title"),
    ("city", "city"),
    ("state", "state"),
    ("postal_code", "postal_code"),
    ("country", "country"),
    ("stage", "stage__name"),
    ("owner", "owner__email"),
    ("score", "score"),
    ("grade", "grade"),
    ("tags", "tags"),
    ("deal_value", "deal_value"),
    ("won_amount", "won_amount"),
    ("won_on", "won_on"),
    ("lost_reason", "lost_reason"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("utm_campaign", "utm_campaign"),
    ("consent_given", "consent_given"),
    ("first_contacted_at", "first_contacted_at"),
    ("duplicate_of", "duplicate_of_id"),
    ("custom", "custom"),
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value, ensure_ascii=False) if value else ""
    text = str(value)
    # Spreadsheets run cells that start with = + - @ as formulas: quote them (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not text[1:].replace(".", "").isdigit() else text


def stream_leads_csv(queryset) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([name for name, _ in COLUMNS])
    for row in queryset.values_list(*(path for _, path in COLUMNS)).iterator(chunk_size=2000):
        yield writer.writerow([csv_cell(v) for v in row])


def export_filename(organization) -> str:
    return f"leads-{organization.slug}-{timezone.localdate():%Y-%m-%d}.csv"
