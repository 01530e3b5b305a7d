"""Templates: rendering with lead fields, previews, A/B variants, the defaults every organization starts with, and
syncing WhatsApp templates (and their approval) from Meta when credentials are set."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from leadflow.exceptions import ServiceError
from leads.intake.mapping import CONTACT_FIELDS
from leads.scoring import field_value

from ..constants import MessageChannel, TemplateCategory, TemplateStatus, WhatsAppProvider
from ..models import Message, MessageTemplate, TemplateVariant

NAMED = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*\}\}")
NUMBERED = re.compile(r"\{\{\s*(\d+)\s*\}\}")
# Fields templates may name besides the lead's contact fields and custom.<name>.
EXTRA_FIELDS = ("organization", "owner", "source", "stage")
KNOWN_FIELDS = frozenset({*CONTACT_FIELDS, *EXTRA_FIELDS})


def lead_field_text(lead, name: str) -> str:
    """A lead field as text for a message: ``first_name`` falls back to the first word of the full name."""
    if lead is None:
        return ""
    if name == "organization":
        return lead.organization.name
    if name == "owner":
        return lead.owner.display_name if lead.owner_id else ""
    if name == "stage":
        return lead.stage.name if lead.stage_id else ""
    if name == "source":
        return lead.get_source_display()
    if name == "first_name" and not lead.first_name:
        return (lead.full_name or "").split(" ")[0]
    value = field_value(lead, name)
    return "" if value is None else str(value)


def render_named(text: str, lead, *, fallback: str = "") -> str:
    return NAMED.sub(lambda m: lead_field_text(lead, m.group(1)) or fallback, text or "")


def render_numbered(text: str, values: list[str]) -> str:
    def one(match):
        index = int(match.group(1)) - 1
        return values[index] if 0 <= index < len(values) else match.group(0)

    return NUMBERED.sub(one, text or "")


@dataclass
class RenderedTemplate:
    body: str
    subject: str = ""
    variables: list[str] = field(default_factory=list)  # WhatsApp: {{1}}, {{2}} … in order
    provider_template_id: str = ""
    variant: TemplateVariant | None = None


def template_render(template: MessageTemplate, lead, *, variant: TemplateVariant | None = None) -> RenderedTemplate:
    """The message ``template`` (or its ``variant``) makes for ``lead``."""
    if template.channel == MessageChannel.WHATSAPP:
        values = [lead_field_text(lead, name) or "-" for name in template.variables]
        provider_id = (variant.provider_template_id if variant else "") or template.provider_template_id
        return RenderedTemplate(
            body=render_numbered(template.body, values),
            variables=values,
            provider_template_id=provider_id or template.name,
            variant=variant,
        )
    body = variant.body if variant is not None and variant.body else template.body
    subject = variant.subject if variant is not None and variant.subject else template.subject
    return RenderedTemplate(
        body=render_named(body, lead, fallback="there" if "first_name" in body else ""),
        subject=render_named(subject, lead),
        variant=variant,
    )


def template_pick_variant(template: MessageTemplate) -> TemplateVariant | None:
    """A/B split by weight, deterministic: the alternative furthest behind its share so far (None is the template's
    own body, variant A, weight 1)."""
    variants = [v for v in template.variants.all() if v.is_active and v.weight > 0]
    if not variants:
        return None
    counts = dict(
        Message.objects.unscoped()
        .filter(organization_id=template.organization_id, template=template)
        .values_list("template_variant")
        .annotate(n=Count("id"))
        .values_list("template_variant", "n")
    )
    options: list[tuple[TemplateVariant | None, int]] = [(None, 1), *((v, v.weight) for v in variants)]
    return min(options, key=lambda option: counts.get(option[0].pk if option[0] else None, 0) / option[1])[0]


def template_errors(*, channel: str, body: str, variables: list[str], subject: str = "") -> dict[str, list[str]]:
    """What is wrong with a template's text: WhatsApp numbers its variables 1…n, one lead field each; SMS and
    email name lead fields."""
    errors: dict[str, list[str]] = {}
    if not (body or "").strip():
        errors["body"] = ["Write the message."]
        return errors
    if channel == MessageChannel.WHATSAPP:
        numbers = sorted({int(n) for n in NUMBERED.findall(body)})
        if numbers != list(range(1, len(numbers) + 1)):
            errors["body"] = ["Number the variables {{1}}, {{2}} … without gaps."]
        elif len(variables) != len(numbers):
            errors["variables"] = [f"Name one lead field for each of the {len(numbers)} variables, in order."]
        if NAMED.search(body):
            errors.setdefault("body", []).append("WhatsApp templates use numbered variables ({{1}}), not names.")
        fields = list(variables)
    else:
        fields = NAMED.findall(body) + NAMED.findall(subject or "")
        if channel == MessageChannel.EMAIL and not (subject or "").strip():
            errors["subject"] = ["Emails need a subject."]
    unknown = sorted({f for f in fields if f not in KNOWN_FIELDS and not f.startswith("custom.")})
    if unknown:
        key = "variables" if channel == MessageChannel.WHATSAPP else "body"
        errors.setdefault(key, []).append(f"Unknown lead fields: {', '.join(unknown)}.")
    return errors


def _status_for_new_whatsapp_template(organization_id: int, provider_template_id: str = "") -> str:
    from ..providers import twilio_configured
    from .channels import messaging_settings_for

    row = messaging_settings_for(organization_id)
    if row.whatsapp_provider == "meta":
        from .channels import meta_access_token

        live = bool(meta_access_token(row) and row.meta_business_account_id)
    else:
        # Twilio approves Content templates on its side: a Content SID pasted here is one it approved.
        live = twilio_configured() and not provider_template_id
    # With a live provider WhatsApp approves templates (a sync brings the verdict); offline they are usable at once.
    return TemplateStatus.PENDING if live else TemplateStatus.APPROVED


@transaction.atomic
def template_create(*, organization, actor=None, **fields: Any) -> MessageTemplate:
    errors = template_errors(
        channel=fields.get("channel", ""),
        body=fields.get("body", ""),
        variables=list(fields.get("variables") or []),
        subject=fields.get("subject", ""),
    )
    if errors:
        name, messages = next(iter(errors.items()))
        raise ServiceError(messages[0], field=name)
    if (
        MessageTemplate.objects.unscoped()
        .filter(
            organization_id=organization.pk,
            name=fields["name"],
            channel=fields["channel"],
            language=fields.get("language", "en"),
        )
        .exists()
    ):
        raise ServiceError("A template with this name, channel and language exists.", field="name")
    if fields["channel"] == MessageChannel.WHATSAPP and "status" not in fields:
        fields["status"] = _status_for_new_whatsapp_template(organization.pk, fields.get("provider_template_id", ""))
    return MessageTemplate.objects.unscoped().create(organization_id=organization.pk, **fields)


@transaction.atomic
def template_update(*, template: MessageTemplate, actor=None, **fields: Any) -> MessageTemplate:
    merged = {name: fields.get(name, getattr(template, name)) for name in ("channel", "body", "variables", "subject")}
    errors = template_errors(
        channel=merged["channel"],
        body=merged["body"],
        variables=list(merged["variables"] or []),
        subject=merged["subject"],
    )
    if errors:
        name, messages = next(iter(errors.items()))
        raise ServiceError(messages[0], field=name)
    for name, value in fields.items():
        setattr(template, name, value)
    if template.channel == MessageChannel.WHATSAPP and template.status == TemplateStatus.PENDING:
        template.status = _status_for_new_whatsapp_template(template.organization_id, template.provider_template_id)
    template.save()
    return template


# Every organization starts with these; the instant welcome automation sends "welcome" on the lead's channel.
DEFAULT_TEMPLATES = [
    {
        "name": "welcome",
        "channel": MessageChannel.WHATSAPP,
        "category": TemplateCategory.UTILITY,
        "body": "Hi {{1}}, thanks for contacting {{2}}! We got your enquiry and will be in touch shortly. "
        "Reply here with any question.",
        "variables": ["first_name", "organization"],
    },
    {
        "name": "welcome",
        "channel": MessageChannel.SMS,
        "body": "Hi {{first_name}}, thanks for contacting {{organization}}! We got your enquiry and will call you "
        "shortly. Reply STOP to opt out.",
    },
    {
        "name": "welcome",
        "channel": MessageChannel.EMAIL,
        "subject": "Thanks for contacting {{organization}}",
        "body": "Hi {{first_name}},\n\nThanks for contacting {{organization}}. We got your enquiry and someone from "
        "our team will be in touch shortly. Just reply to this email if you have a question.\n",
    },
    {
        "name": "leadflow_notification",
        "channel": MessageChannel.WHATSAPP,
        "category": TemplateCategory.UTILITY,
        "body": "LeadFlow: {{1}}",
        "variables": ["organization"],
    },
]


def default_templates_install(*, organization) -> list[MessageTemplate]:
    made = []
    for spec in DEFAULT_TEMPLATES:
        exists = MessageTemplate.objects.unscoped().filter(
            organization_id=organization.pk, name=spec["name"], channel=spec["channel"], language="en"
        )
        if not exists.exists():
            made.append(template_create(organization=organization, **spec))
    return made


def templates_usable_named(*, organization_id: int, name: str) -> dict[str, MessageTemplate]:
    """The usable templates of one name, by channel."""
    found = (
        MessageTemplate.objects.unscoped()
        .filter(organization_id=organization_id, name=name, is_active=True, status=TemplateStatus.APPROVED)
        .prefetch_related("variants")
        .order_by("language", "id")
    )
    by_channel: dict[str, MessageTemplate] = {}
    for template in found:
        by_channel.setdefault(template.channel, template)
    return by_channel


# Syncing from the provider --------------------------------------------------------------------------------------------

META_STATUSES = {
    "APPROVED": TemplateStatus.APPROVED,
    "PENDING": TemplateStatus.PENDING,
    "IN_APPEAL": TemplateStatus.PENDING,
    "REJECTED": TemplateStatus.REJECTED,
    "PAUSED": TemplateStatus.PAUSED,
    "DISABLED": TemplateStatus.DISABLED,
}
# A Twilio content's WhatsApp approval request; "unsubmitted" content is not a WhatsApp template yet (skipped).
TWILIO_APPROVAL_STATUSES = {
    "approved": TemplateStatus.APPROVED,
    "received": TemplateStatus.PENDING,
    "pending": TemplateStatus.PENDING,
    "rejected": TemplateStatus.REJECTED,
    "paused": TemplateStatus.PAUSED,
    "disabled": TemplateStatus.DISABLED,
}


@dataclass(frozen=True)
class RemoteTemplate:
    """A WhatsApp template as the provider lists it. ``provider_template_id`` is what a send names: the template's
    name for Meta, the content SID (``HX…``, sent as ``ContentSid``) for Twilio."""

    name: str
    language: str
    status: str
    category: str
    body: str
    provider_template_id: str
    rejection_reason: str = ""


def _meta_body(components: list[dict]) -> str:
    return next((c.get("text", "") for c in components or [] if str(c.get("type", "")).upper() == "BODY"), "")


def _meta_templates(row) -> list[RemoteTemplate]:
    from ..providers import SendError
    from ..providers.meta import MetaWhatsAppProvider
    from .channels import meta_access_token

    token = meta_access_token(row)
    if not token or not row.meta_business_account_id:
        raise ServiceError("Connect the Meta WhatsApp Cloud API (token and business account id) first.")
    provider = MetaWhatsAppProvider(
        access_token=token, phone_number_id=row.meta_phone_number_id, business_account_id=row.meta_business_account_id
    )
    try:
        remote = list(provider.templates())
    except SendError as error:
        raise ServiceError(f"Meta did not list the templates: {error.message}") from None
    return [
        RemoteTemplate(
            name=str(item.get("name", ""))[:100],
            language=str(item.get("language", "en"))[:10],
            status=META_STATUSES.get(str(item.get("status", "")).upper(), TemplateStatus.PENDING),
            category=str(item.get("category", "UTILITY")).lower(),
            body=_meta_body(item.get("components") or []),
            provider_template_id=str(item.get("name", ""))[:100],
            rejection_reason=str(item.get("rejected_reason") or "")[:255],
        )
        for item in remote
    ]


def _twilio_body(types: dict) -> str:
    """The text of a content: its ``twilio/text`` body, else the first type that has one (media, quick replies…)."""
    ordered = [types.get("twilio/text") or {}, *types.values()]
    return next((str(kind["body"]) for kind in ordered if isinstance(kind, dict) and kind.get("body")), "")


def _twilio_templates() -> list[RemoteTemplate]:
    from ..providers import SendError, messaging_provider, twilio_configured

    if not twilio_configured():
        raise ServiceError("Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to sync templates from Twilio.")
    try:
        remote = list(messaging_provider().whatsapp_templates())
    except SendError as error:
        raise ServiceError(f"Twilio did not list the templates: {error.message}") from None
    found = []
    for item in remote:
        approval = item.get("approval_requests") or {}
        status = TWILIO_APPROVAL_STATUSES.get(str(approval.get("status", "")).lower())
        if status is None or not item.get("sid"):
            continue
        found.append(
            RemoteTemplate(
                name=str(approval.get("name") or item.get("friendly_name") or item["sid"])[:100],
                language=str(item.get("language") or "en")[:10],
                status=status,
                category=str(approval.get("category") or "UTILITY").lower(),
                body=_twilio_body(item.get("types") or {}),
                provider_template_id=str(item["sid"])[:100],
                rejection_reason=str(approval.get("rejection_reason") or "")[:255],
            )
        )
    return found


@transaction.atomic
def templates_sync(*, organization) -> int:
    """Bring the organization's WhatsApp templates and their approval status in from its WhatsApp provider (Meta's
    business account, or Twilio's Content API); returns how many were created or changed. Templates LeadFlow does
    not have yet are added (their variables to be named by hand)."""
    from .channels import messaging_settings_for

    row = messaging_settings_for(organization.pk)
    remote = _meta_templates(row) if row.whatsapp_provider == WhatsAppProvider.META else _twilio_templates()
    changed = 0
    now = timezone.now()
    # The organization's WhatsApp templates, read once: matched by provider id, else by name and language.
    mine = list(
        MessageTemplate.objects.unscoped()
        .filter(organization_id=organization.pk, channel=MessageChannel.WHATSAPP)
        .order_by("-id")
    )
    by_provider_id = {t.provider_template_id: t for t in mine if t.provider_template_id}
    by_name = {(t.name, t.language): t for t in mine}
    for item in remote:
        if not item.name:
            continue
        template = by_provider_id.get(item.provider_template_id) or by_name.get((item.name, item.language))
        rejection_reason = item.rejection_reason if item.status == TemplateStatus.REJECTED else ""
        if template is None:
            count = len(set(NUMBERED.findall(item.body)))
            template = MessageTemplate.objects.unscoped().create(
                organization_id=organization.pk,
                name=item.name,
                channel=MessageChannel.WHATSAPP,
                language=item.language,
                category=item.category if item.category in TemplateCategory.values else TemplateCategory.UTILITY,
                body=item.body,
                variables=["first_name"] * count,
                status=item.status,
                provider_template_id=item.provider_template_id,
                rejection_reason=rejection_reason,
                synced_at=now,
            )
            by_provider_id[template.provider_template_id] = by_name[(template.name, template.language)] = template
            changed += 1
            continue
        before = (template.status, template.body, template.provider_template_id, template.rejection_reason)
        template.status = item.status
        template.body = item.body or template.body
        template.provider_template_id = item.provider_template_id
        template.rejection_reason = rejection_reason
        template.synced_at = now
        template.save(
            update_fields=["status", "body", "provider_template_id", "rejection_reason", "synced_at", "updated_at"]
        )
        changed += before != (template.status, template.body, template.provider_template_id, template.rejection_reason)
    return changed
