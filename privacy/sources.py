"""The built-in sources of a person's data: leads and their timeline, notes, raw payloads and CSV rows, outbound
webhook messages, Meta conversion events, campaign sales and the audit log. Registered in ``PrivacyConfig.ready``.

Erasing keeps what the business needs that is not about the person: a lead is anonymized, not deleted, so its
stage, source, dates, deal value, score and every sale and ledger entry still add up in reports; everything that
holds the person's words or details (payloads, notes, timeline entries, webhook bodies) is deleted.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.db.models import F, Func, Q, TextField, Value
from django.db.models.functions import Cast

from accounts.models import AuditEvent
from campaigns.models import BuyerContact, LeadDistribution, LeadSale
from integrations.models import ConversionEvent, WebhookMessage
from leads.constants import ActivityKind
from leads.models import InboundSubmission, Lead, LeadActivity, LeadImport, LeadNote
from leads.services.imports import import_rows

from .registry import PersonDataSource, PersonTarget, register_source

ERASED_TAG = "privacy-erased"
REDACTED = "[erased]"

# Lead fields that describe the person (cleared on erasure) and those that describe the business (kept).
PERSONAL_TEXT_FIELDS = (
    "external_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "job_title",
    "city",
    "state",
    "postal_code",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "landing_page",
    "referrer",
    "user_agent",
    "consent_method",
    "consent_certificate_url",
    "lost_reason",
)
PERSONAL_NULL_FIELDS = ("ip_address", "consent_ip")
EXPORTED_LEAD_FIELDS = (
    "id",
    "source",
    *PERSONAL_TEXT_FIELDS,
    *PERSONAL_NULL_FIELDS,
    "country",
    "custom",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "ad_id",
    "form_id",
    "ad_campaign_id",
    "consent_given",
    "consent_text",
    "consent_at",
    "tags",
    "score",
    "grade",
    "deal_value",
    "won_amount",
    "won_on",
    "received_at",
    "first_contacted_at",
    "created_at",
    "updated_at",
    "duplicate_of_id",
)


def delete_rows(queryset) -> int:
    """Delete and count the source's own rows (what they cascade to, e.g. a message's deliveries, goes too)."""
    _, per_model = queryset.delete()
    return per_model.get(queryset.model._meta.label, 0)


def _digits(column: str) -> Func:
    return Func(F(column), Value(r"\D"), Value(""), Value("g"), function="regexp_replace", output_field=TextField())


def mentions(queryset, column: str, target: PersonTarget, *, text: bool = True):
    """Rows whose ``column`` (text, or JSON read as text) mentions the email or the phone's digits; none when the
    target names neither (retention anonymizes leads by id only)."""
    condition = Q()
    haystack = column if text else f"{column}_text"
    if not text:
        queryset = queryset.annotate(**{haystack: Cast(column, TextField())})
    if target.email:
        condition |= Q(**{f"{haystack}__icontains": target.email})
    if len(target.phone_digits) >= 7:
        queryset = queryset.annotate(**{f"{haystack}_digits": _digits(haystack)})
        condition |= Q(**{f"{haystack}_digits__contains": target.phone_digits})
    return queryset.filter(condition) if condition else queryset.none()


@register_source
class LeadsSource(PersonDataSource):
    key, label = "leads", "Leads"

    def _leads(self, target):
        return Lead.objects.unscoped().filter(organization=target.organization, pk__in=target.lead_ids)

    def export(self, target):
        rows = []
        for lead in self._leads(target).select_related("stage", "owner").order_by("pk"):
            row = {name: getattr(lead, name) for name in EXPORTED_LEAD_FIELDS}
            row["stage"] = lead.stage.name
            row["owner"] = lead.owner.email if lead.owner_id else None
            rows.append(row)
        return rows

    def erase(self, target):
        erased = 0
        for lead in self._leads(target).select_for_update():
            for name in PERSONAL_TEXT_FIELDS:
                setattr(lead, name, "")
            for name in PERSONAL_NULL_FIELDS:
                setattr(lead, name, None)
            lead.custom, lead.score_reasons = {}, []
            lead.tags = sorted({*lead.tags, ERASED_TAG})
            lead.save()
            LeadActivity.objects.unscoped().create(
                organization_id=lead.organization_id,
                lead=lead,
                kind=ActivityKind.UPDATED,
                message="Personal data erased (privacy request or retention policy)",
            )
            erased += 1
        return erased


@register_source
class ActivitiesSource(PersonDataSource):
    key, label = "activities", "Timeline entries"

    def _rows(self, target):
        return LeadActivity.objects.unscoped().filter(organization=target.organization, lead_id__in=target.lead_ids)

    def export(self, target):
        return list(
            self._rows(target).order_by("created_at", "pk").values("lead_id", "kind", "message", "data", "created_at")
        )

    def erase(self, target):
        return delete_rows(self._rows(target))


@register_source
class NotesSource(PersonDataSource):
    key, label = "notes", "Notes"

    def _rows(self, target):
        return LeadNote.objects.unscoped().filter(organization=target.organization, lead_id__in=target.lead_ids)

    def export(self, target):
        return list(
            self._rows(target).order_by("created_at", "pk").values("lead_id", "body", "author__email", "created_at")
        )

    def erase(self, target):
        return delete_rows(self._rows(target))


@register_source
class SubmissionsSource(PersonDataSource):
    """Raw payloads as received: those that made the person's leads, and any other mentioning them (rejected ones
    made no lead)."""

    key, label = "submissions", "Raw payloads received"

    def _ids(self, target) -> set[int]:
        submissions = InboundSubmission.objects.unscoped().filter(organization=target.organization)
        linked = set(submissions.filter(lead_id__in=target.lead_ids).values_list("pk", flat=True))
        return linked | set(mentions(submissions, "raw_body", target).values_list("pk", flat=True))

    def export(self, target):
        rows = InboundSubmission.objects.unscoped().filter(pk__in=self._ids(target)).order_by("received_at", "pk")
        return [
            {
                "id": row.pk,
                "source": row.source,
                "received_at": row.received_at,
                "status": row.status,
                "lead_id": row.lead_id,
                "content_type": row.content_type,
                "raw_body": row.raw_body,
                "headers": row.headers,
                "context": row.context,
                "remote_ip": row.remote_ip,
                "error": row.error,
            }
            for row in rows
        ]

    def erase(self, target):
        return delete_rows(InboundSubmission.objects.unscoped().filter(pk__in=self._ids(target)))


def _row_mentions(values: dict[str, str], target: PersonTarget) -> bool:
    for value in values.values():
        if target.email and value.strip().lower() == target.email:
            return True
        digits = "".join(ch for ch in value if ch.isdigit())
        if len(target.phone_digits) >= 7 and digits.endswith(target.phone_digits):
            return True
    return False


@register_source
class ImportRowsSource(PersonDataSource):
    """CSV files uploaded for import keep every row; the person's rows (and their error entries) are cut out."""

    key, label = "import_rows", "Rows of uploaded CSV files"

    def _imports(self, target):
        if not target.identifiers:
            return []
        imports = LeadImport.objects.unscoped().filter(organization=target.organization).order_by("pk")
        found = []
        for lead_import in imports.iterator(chunk_size=20):
            rows = [(number, values) for number, values in import_rows(lead_import) if _row_mentions(values, target)]
            errors = [item for item in lead_import.errors if _row_mentions(item.get("values") or {}, target)]
            if rows or errors:
                found.append((lead_import, rows, errors))
        return found

    def export(self, target):
        return [
            {"import_id": lead_import.pk, "filename": lead_import.filename, "row": number, "values": values}
            for lead_import, rows, _ in self._imports(target)
            for number, values in rows
        ]

    def erase(self, target):
        removed = 0
        for lead_import, rows, errors in self._imports(target):
            drop = {number for number, _ in rows}
            kept = [values for number, values in import_rows(lead_import) if number not in drop]
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=lead_import.headers, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
            lead_import.content = out.getvalue().encode()
            lead_import.errors = [item for item in lead_import.errors if item not in errors]
            LeadImport.objects.unscoped().filter(pk=lead_import.pk).update(
                content=lead_import.content, errors=lead_import.errors
            )
            removed += len(rows) + len([item for item in errors if item.get("row") not in drop])
        return removed


@register_source
class WebhookMessagesSource(PersonDataSource):
    """Outbound webhook bodies about the person's leads (their deliveries and attempts go with them)."""

    key, label = "webhook_messages", "Outbound webhook messages"

    def _rows(self, target):
        messages = WebhookMessage.objects.unscoped().filter(organization=target.organization)
        linked = set(messages.filter(payload__data__id__in=list(target.lead_ids)).values_list("pk", flat=True))
        mentioned = set(mentions(messages, "payload", target, text=False).values_list("pk", flat=True))
        return WebhookMessage.objects.unscoped().filter(pk__in=linked | mentioned)

    def export(self, target):
        return [
            {
                "message_id": message.message_id,
                "event_type": message.event_type,
                "created_at": message.created_at,
                "payload": message.payload,
                "deliveries": [
                    {"endpoint": delivery.endpoint.url, "status": delivery.status, "attempts": delivery.attempt_count}
                    for delivery in message.deliveries.all()
                ],
            }
            for message in self._rows(target).prefetch_related("deliveries__endpoint").order_by("created_at", "pk")
        ]

    def erase(self, target):
        return delete_rows(self._rows(target))


@register_source
class ConversionEventsSource(PersonDataSource):
    key, label = "conversion_events", "Lead stages sent to Meta"

    def _rows(self, target):
        return ConversionEvent.objects.unscoped().filter(organization=target.organization, lead_id__in=target.lead_ids)

    def export(self, target):
        return list(
            self._rows(target)
            .order_by("event_time", "pk")
            .values("lead_id", "leadgen_id", "event_name", "event_time", "status", "sent_at")
        )

    def erase(self, target):
        return delete_rows(self._rows(target))


@register_source
class CampaignSalesSource(PersonDataSource):
    """Who the person's leads were sold to. Sales and routings hold no personal details (they stay, pointing at the
    anonymized lead, so buyers' caps, invoices and revenue stay right); the buyers' per-person contact keys, which
    are the email and phone themselves, are deleted."""

    key, label = "campaign_sales", "Campaign routings and sales"

    def _contacts(self, target):
        keys = [f"email:{target.email}"] if target.email else []
        keys += [f"phone:{target.phone}"] if target.phone else []
        contacts = BuyerContact.objects.unscoped().filter(organization=target.organization)
        return contacts.filter(Q(sale__lead_id__in=target.lead_ids) | Q(contact_key__in=keys))

    def export(self, target):
        routings = (
            LeadDistribution.objects.unscoped()
            .filter(organization=target.organization, lead_id__in=target.lead_ids)
            .select_related("campaign")
            .order_by("created_at", "pk")
        )
        sales = {
            sale.distribution_id: sale
            for sale in LeadSale.objects.unscoped()
            .filter(organization=target.organization, lead_id__in=target.lead_ids)
            .select_related("buyer")
        }
        return [
            {
                "lead_id": routing.lead_id,
                "campaign": routing.campaign.name,
                "status": routing.status,
                "routed_at": routing.created_at,
                "buyer": sales[routing.pk].buyer.name if routing.pk in sales else None,
                "price": sales[routing.pk].price if routing.pk in sales else None,
            }
            for routing in routings
        ] + [{"buyer_contact": contact.contact_key, "buyer_id": contact.buyer_id} for contact in self._contacts(target)]

    def erase(self, target):
        return delete_rows(self._contacts(target))


@register_source
class AuditEventsSource(PersonDataSource):
    """The audit log keeps what happened, when and by whom; entries about the person's leads lose the person's
    details (the lead's name in ``target_repr``, values in ``changes``)."""

    key, label = "audit_events", "Audit log entries"

    def _rows(self, target):
        events = AuditEvent.objects.unscoped().filter(organization=target.organization)
        about_leads = Q(target_type="leads.lead", target_id__in=[str(pk) for pk in target.lead_ids])
        mentioned = mentions(events, "changes", target, text=False).values("pk")
        return events.filter(about_leads | Q(pk__in=mentioned)).exclude(target_repr=REDACTED)

    def export(self, target):
        return list(
            self._rows(target).order_by("created_at", "pk").values("action", "target_repr", "changes", "created_at")
        )

    def erase(self, target):
        return self._rows(target).update(target_repr=REDACTED, changes={"redacted": True})


def as_json(document: dict[str, Any]) -> str:
    from django.core.serializers.json import DjangoJSONEncoder

    return json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
