"""CSV import: upload → column mapping with a preview → a background job feeding each row to the intake
pipeline, with progress, dedupe counts and a per-row error report."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadflow.exceptions import ServiceError
from leadflow.realtime import publish
from leadflow.tenancy.context import organization_scope

from ..constants import ImportStatus, LeadSource, SubmissionStatus
from ..intake.mapping import ATTRIBUTION_FIELDS, CONTACT_FIELDS, canonical_key
from ..intake.pipeline import lead_intake
from ..models import LeadImport
from .leads import checked_tags

logger = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
PROGRESS_EVERY = 50
MAX_STORED_ERRORS = 5000
SKIP = ""
CUSTOM = "custom"
# What a column can become: a standard field, a custom field named after the column, or nothing.
IMPORT_TARGETS = (
    *CONTACT_FIELDS,
    "external_id",
    "tags",
    "deal_value",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    *ATTRIBUTION_FIELDS,
    CUSTOM,
)


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def _reader(text: str) -> csv.DictReader:
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)


def suggest_mapping(headers: list[str]) -> dict[str, str]:
    mapping = {}
    for header in headers:
        key = canonical_key(header)
        mapping[header] = key if key in IMPORT_TARGETS and key != CUSTOM else CUSTOM
    return mapping


@transaction.atomic
def lead_import_upload(*, organization, actor, filename: str, content: bytes) -> LeadImport:
    if not content.strip():
        raise ServiceError("The file is empty.", field="file")
    if len(content) > MAX_BYTES:
        raise ServiceError(
            f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into smaller files.", field="file"
        )
    if b"\x00" in content[:4096]:
        raise ServiceError("This is not a CSV file (it looks binary; save the spreadsheet as CSV first).", field="file")
    reader = _reader(_decode(content))
    headers = [h.strip() for h in (reader.fieldnames or []) if h and h.strip()]
    if not headers:
        raise ServiceError("The first row must name the columns.", field="file")
    if len(set(headers)) != len(headers):
        raise ServiceError("Two columns have the same name; rename one.", field="file")
    total = sum(1 for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str)))
    if total == 0:
        raise ServiceError("The file has a header row but no leads.", field="file")
    if total > MAX_ROWS:
        raise ServiceError(f"At most {MAX_ROWS:,} rows per import.", field="file")
    return LeadImport.objects.create(
        organization=organization,
        created_by=actor,
        filename=filename[:255],
        content=content,
        headers=headers,
        mapping=suggest_mapping(headers),
        total_rows=total,
    )


def import_rows(lead_import: LeadImport):
    """``(row number, {column: value})`` for each non-empty row; row 1 is the header."""
    reader = _reader(_decode(bytes(lead_import.content)))
    for number, row in enumerate(reader, start=2):
        values = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items() if k}
        if any(values.values()):
            yield number, values


def import_preview(lead_import: LeadImport, *, rows: int = 5) -> list[dict[str, str]]:
    preview = []
    for _, values in import_rows(lead_import):
        preview.append(values)
        if len(preview) >= rows:
            break
    return preview


def payload_from_row(values: dict[str, str], mapping: dict[str, str]) -> dict[str, Any]:
    payload: dict[str, Any] = {"custom": {}}
    for column, target in mapping.items():
        value = values.get(column, "")
        if target == SKIP or value == "":
            continue
        if target == CUSTOM:
            payload["custom"][column] = value
        else:
            payload[target] = value
    return payload


@transaction.atomic
def lead_import_start(*, lead_import: LeadImport, mapping: dict[str, str], tags=None) -> LeadImport:
    # Locked: two clicks on "Start" must not queue two runs.
    lead_import = LeadImport.objects.select_for_update().get(pk=lead_import.pk)
    if lead_import.status != ImportStatus.UPLOADED:
        raise ServiceError("This import has already started.", field="mapping")
    unknown_columns = set(mapping) - set(lead_import.headers)
    if unknown_columns:
        raise ServiceError(f"The file has no column {', '.join(sorted(unknown_columns))}.", field="mapping")
    bad = {column: target for column, target in mapping.items() if target not in (*IMPORT_TARGETS, SKIP)}
    if bad:
        raise ServiceError(f"Unknown field for {', '.join(sorted(bad))}.", field="mapping")
    targets = [t for t in mapping.values() if t not in (SKIP, CUSTOM)]
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise ServiceError(f"Two columns go to {', '.join(repeated)}; pick one.", field="mapping")
    if not {"email", "phone"} & set(targets):
        raise ServiceError("Map a column to email or phone: a lead needs a way to reach them.", field="mapping")
    lead_import.mapping = {column: mapping.get(column, SKIP) for column in lead_import.headers}
    lead_import.tags = checked_tags(list(tags or []))
    lead_import.status = ImportStatus.QUEUED
    lead_import.save(update_fields=["mapping", "tags", "status"])

    from ..tasks import run_lead_import

    transaction.on_commit(lambda: run_lead_import.delay(lead_import.pk))
    return lead_import


def _progress(lead_import: LeadImport, fields: list[str]) -> None:
    lead_import.save(update_fields=fields)
    publish(
        lead_import.organization,
        "import.progress",
        {
            "id": lead_import.pk,
            "status": lead_import.status,
            "percent": lead_import.percent,
            "processed": lead_import.processed_rows,
            "total": lead_import.total_rows,
            "created": lead_import.created_count,
            "duplicates": lead_import.duplicate_count,
            "errors": lead_import.error_count,
        },
    )


COUNTERS = ["processed_rows", "created_count", "duplicate_count", "error_count", "errors"]


def lead_import_run(import_id: int) -> LeadImport | None:
    """Import every row; safe to run again after a crash (rows already made are found as re-deliveries)."""
    lead_import = (
        LeadImport.objects.unscoped().select_related("organization", "created_by").filter(pk=import_id).first()
    )
    if lead_import is None or lead_import.status in (ImportStatus.COMPLETED, ImportStatus.UPLOADED):
        return lead_import
    with organization_scope(lead_import.organization):
        lead_import.status = ImportStatus.RUNNING
        lead_import.started_at = lead_import.started_at or timezone.now()
        for name in COUNTERS:
            setattr(lead_import, name, [] if name == "errors" else 0)
        _progress(lead_import, ["status", "started_at", *COUNTERS])
        try:
            for number, values in import_rows(lead_import):
                payload = payload_from_row(values, lead_import.mapping)
                payload.setdefault("external_id", f"import-{lead_import.pk}-row-{number}")
                outcome = lead_intake(
                    organization=lead_import.organization,
                    source=LeadSource.CSV,
                    payload=payload,
                    actor=lead_import.created_by,
                    tags=lead_import.tags,
                    context={"import_id": lead_import.pk, "row": number},
                )
                lead_import.processed_rows += 1
                if outcome.status == SubmissionStatus.ACCEPTED:
                    lead_import.created_count += 1
                elif outcome.status == SubmissionStatus.DUPLICATE:
                    lead_import.duplicate_count += 1
                else:
                    lead_import.error_count += 1
                    if len(lead_import.errors) < MAX_STORED_ERRORS:
                        lead_import.errors.append({"row": number, "values": values, "errors": outcome.errors})
                if lead_import.processed_rows % PROGRESS_EVERY == 0:
                    _progress(lead_import, COUNTERS)
        except Exception as error:
            logger.exception("import %s failed", lead_import.pk)
            lead_import.status = ImportStatus.FAILED
            lead_import.failure = f"{type(error).__name__}: {error}"[:2000]
            lead_import.finished_at = timezone.now()
            _progress(lead_import, [*COUNTERS, "status", "failure", "finished_at"])
            return lead_import
        lead_import.status = ImportStatus.COMPLETED
        lead_import.finished_at = timezone.now()
        _progress(lead_import, [*COUNTERS, "status", "finished_at"])
    return lead_import


def import_error_report(lead_import: LeadImport) -> str:
    """The rows that were not imported, as CSV: the row number, what was wrong, then the row as uploaded."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "errors", *lead_import.headers])
    for item in lead_import.errors:
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" if field != "non_field_errors" else " ".join(messages)
            for field, messages in item["errors"].items()
        )
        writer.writerow([item["row"], problems, *(item["values"].get(h, "") for h in lead_import.headers)])
    return out.getvalue()
