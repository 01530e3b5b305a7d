from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from accounts.models import Membership, User

from ..constants import SubmissionStatus
from ..models import (
    AssignmentRule,
    InboundSubmission,
    Lead,
    LeadActivity,
    LeadImport,
    LeadNote,
    PipelineStage,
    ScoringRule,
)


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")
    email = serializers.EmailField()


class StageBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineStage
        fields = ["id", "name", "kind", "color"]


class LeadSerializer(serializers.ModelSerializer):
    stage = StageBriefSerializer(read_only=True)
    owner = UserBriefSerializer(read_only=True, allow_null=True)
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = Lead
        exclude = ["organization", "search_vector", "search_text"]
        read_only_fields = [f.name for f in Lead._meta.concrete_fields]


class LeadListSerializer(serializers.ModelSerializer):
    """The list's row: enough to show and filter, nothing that needs another query."""

    stage = StageBriefSerializer(read_only=True)
    owner = UserBriefSerializer(read_only=True, allow_null=True)
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = Lead
        fields = [
            "id",
            "name",
            "first_name",
            "last_name",
            "email",
            "phone",
            "company",
            "city",
            "state",
            "country",
            "source",
            "external_id",
            "stage",
            "owner",
            "score",
            "grade",
            "tags",
            "deal_value",
            "received_at",
            "first_contacted_at",
            "duplicate_of",
            "duplicate_count",
            "over_quota",
            "utm_campaign",
        ]

    def to_representation(self, lead):
        # The list's hot path: the same output as the declared fields, built directly (DRF's per-field machinery
        # was most of a 50-row page's time).
        stage, owner = lead.stage, lead.owner
        return {
            "id": lead.pk,
            "name": lead.display_name,
            **{name: getattr(lead, name) for name in _PLAIN_LIST_FIELDS},
            "stage": {"id": stage.pk, "name": stage.name, "kind": stage.kind, "color": stage.color},
            "owner": {"id": owner.pk, "name": owner.display_name, "email": owner.email} if owner else None,
            "deal_value": None if lead.deal_value is None else str(lead.deal_value),
            "received_at": _iso(lead.received_at),
            "first_contacted_at": _iso(lead.first_contacted_at),
            "duplicate_of": lead.duplicate_of_id,
        }


_PLAIN_LIST_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "city",
    "state",
    "country",
    "source",
    "external_id",
    "score",
    "grade",
    "tags",
    "duplicate_count",
    "over_quota",
    "utm_campaign",
)


# The list endpoint reads rows as dicts (``QuerySet.values``): building 100 model instances (50 leads and their stages)
# was a third of a page's CPU. ``lead_list_row`` gives exactly what ``LeadListSerializer`` gives for the same lead.
LIST_VALUES = (
    "id",
    "full_name",
    *_PLAIN_LIST_FIELDS,
    "deal_value",
    "received_at",
    "first_contacted_at",
    "duplicate_of",
    "stage__id",
    "stage__name",
    "stage__kind",
    "stage__color",
    "owner__id",
    "owner__email",
    "owner__first_name",
    "owner__last_name",
)


def lead_list_row(row: dict) -> dict:
    owner_id = row["owner__id"]
    owner_name = f"{row['owner__first_name']} {row['owner__last_name']}".strip() or row["owner__email"]
    return {
        "id": row["id"],
        "name": row["full_name"] or row["email"] or row["phone"] or f"Lead {row['id']}",  # Lead.display_name
        **{name: row[name] for name in _PLAIN_LIST_FIELDS},
        "stage": {
            "id": row["stage__id"],
            "name": row["stage__name"],
            "kind": row["stage__kind"],
            "color": row["stage__color"],
        },
        "owner": {"id": owner_id, "name": owner_name, "email": row["owner__email"]} if owner_id else None,
        "deal_value": None if row["deal_value"] is None else str(row["deal_value"]),
        "received_at": _iso(row["received_at"]),
        "first_contacted_at": _iso(row["first_contacted_at"]),
        "duplicate_of": row["duplicate_of"],
    }


def _iso(value):
    """Date-times as DRF writes them (UTC as Z)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class LeadUpdateSerializer(serializers.Serializer):
    """Edit a lead: contact fields, ``custom`` and ``deal_value``; ``stage``, ``owner`` and ``tags`` too."""

    first_name = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_blank=True)
    full_name = serializers.CharField(required=False, allow_blank=True)
    email = serializers.CharField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True)
    company = serializers.CharField(required=False, allow_blank=True)
    job_title = serializers.CharField(required=False, allow_blank=True)
    city = serializers.CharField(required=False, allow_blank=True)
    state = serializers.CharField(required=False, allow_blank=True)
    postal_code = serializers.CharField(required=False, allow_blank=True)
    country = serializers.CharField(required=False, allow_blank=True)
    custom = serializers.DictField(required=False)
    deal_value = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True, min_value=0)
    stage = serializers.PrimaryKeyRelatedField(queryset=PipelineStage.objects, required=False)
    owner = serializers.IntegerField(required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)


class UtmSerializer(serializers.Serializer):
    source = serializers.CharField(required=False)
    medium = serializers.CharField(required=False)
    campaign = serializers.CharField(required=False)
    term = serializers.CharField(required=False)
    content = serializers.CharField(required=False)


class ConsentSerializer(serializers.Serializer):
    given = serializers.BooleanField(required=False)
    text = serializers.CharField(required=False, help_text="The exact wording the person agreed to")
    at = serializers.DateTimeField(required=False)
    ip = serializers.IPAddressField(required=False)
    method = serializers.CharField(required=False, help_text="e.g. checkbox, double opt-in, call recording")
    certificate_url = serializers.URLField(required=False, help_text="A TrustedForm / Jornaya certificate")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A supplier's lead",
            value={
                "external_id": "SUP-10293",
                "first_name": "Asha",
                "last_name": "Verma",
                "email": "Asha.Verma@Example.com ",
                "phone": "098765 43210",
                "city": "Pune",
                "state": "Maharashtra",
                "country": "IN",
                "custom": {"budget": 4500000, "timeline": "3 months"},
                "utm": {"source": "google", "medium": "cpc", "campaign": "pune-2bhk"},
                "consent": {"given": True, "text": "I agree to be contacted by Acme Realty.", "method": "checkbox"},
                "tags": ["2bhk"],
            },
            request_only=True,
        )
    ]
)
class LeadIngestSerializer(serializers.Serializer):
    """The standard lead payload. Everything is optional except a way to reach the person (email or phone).
    Unknown top-level keys are kept under ``custom``; common aliases (``name``, ``mobile``, ``zip`` …) are understood."""

    campaign = serializers.IntegerField(
        required=False,
        help_text="The campaign this lead is for: validated against its category and distributed at once. A "
        "supplier's key may omit it when the supplier has one campaign.",
    )
    external_id = serializers.CharField(
        required=False, help_text="Your id for this lead: re-sending it never makes a second lead"
    )
    first_name = serializers.CharField(required=False)
    last_name = serializers.CharField(required=False)
    full_name = serializers.CharField(required=False)
    email = serializers.CharField(required=False)
    phone = serializers.CharField(
        required=False, help_text="Any format; numbers without a country code use the organization's region"
    )
    company = serializers.CharField(required=False)
    job_title = serializers.CharField(required=False)
    city = serializers.CharField(required=False)
    state = serializers.CharField(required=False, help_text="Name or ISO 3166-2 code")
    postal_code = serializers.CharField(required=False)
    country = serializers.CharField(required=False, help_text="Name or ISO 3166-1 code")
    custom = serializers.DictField(required=False)
    utm = UtmSerializer(required=False)
    consent = ConsentSerializer(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    deal_value = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)
    gclid = serializers.CharField(required=False)
    fbclid = serializers.CharField(required=False)
    ad_id = serializers.CharField(required=False)
    form_id = serializers.CharField(required=False)
    campaign_id = serializers.CharField(required=False)
    landing_page = serializers.URLField(required=False)
    referrer = serializers.URLField(required=False)
    ip_address = serializers.IPAddressField(required=False)
    user_agent = serializers.CharField(required=False)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Accepted",
            value={"id": 5012, "status": "accepted", "submission_id": 88231, "duplicate_of": None},
            status_codes=["201"],
            response_only=True,
        ),
        OpenApiExample(
            "Duplicate",
            value={"id": 5013, "status": "duplicate", "submission_id": 88232, "duplicate_of": 5012},
            status_codes=["200"],
            response_only=True,
        ),
    ]
)
class IngestSaleSerializer(serializers.Serializer):
    buyer = serializers.IntegerField()
    price = serializers.DecimalField(max_digits=14, decimal_places=2)


class IngestDistributionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["sold", "unsold", "skipped", "pending"],
        help_text="skipped: a test lead (never sold); pending: stored, distributed shortly by the sweep",
    )
    sales = IngestSaleSerializer(many=True, required=False)
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)
    reasons = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="buyer id → why that buyer did not get the lead"
    )
    replayed = serializers.BooleanField(
        required=False, help_text="true when this is the outcome stored before (a re-delivery or a duplicate)"
    )
    reason = serializers.CharField(required=False)


class IngestResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="The lead (for a re-delivery, the lead it made before)")
    status = serializers.ChoiceField(choices=[SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE])
    submission_id = serializers.IntegerField()
    duplicate_of = serializers.IntegerField(allow_null=True)
    campaign = serializers.IntegerField(required=False, help_text="Present when the lead was posted to a campaign")
    distribution = IngestDistributionSerializer(
        required=False, allow_null=True, help_text="The campaign's outcome for the lead, decided before answering"
    )


class UsageSerializer(serializers.Serializer):
    month = serializers.DateField()
    count = serializers.IntegerField()
    quota = serializers.IntegerField(help_text="0 means unlimited")
    percent = serializers.IntegerField()
    over = serializers.BooleanField()


class NoteSerializer(serializers.ModelSerializer):
    author = UserBriefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = LeadNote
        fields = ["id", "body", "author", "created_at", "updated_at"]
        read_only_fields = ["id", "author", "created_at", "updated_at"]


class ActivitySerializer(serializers.ModelSerializer):
    actor = UserBriefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = LeadActivity
        fields = ["id", "kind", "message", "data", "actor", "created_at"]


class WonSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True, min_value=0)
    date = serializers.DateField(required=False, allow_null=True)


class LostSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255)


class AssignSerializer(serializers.Serializer):
    owner = serializers.IntegerField(allow_null=True, help_text="A member's user id; null unassigns")


class BulkActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["stage", "assign", "tag", "untag", "delete"])
    ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=1000)
    value = serializers.JSONField(required=False, allow_null=True, help_text="Stage id, user id, or a list of tags")


class MergeSerializer(serializers.Serializer):
    duplicates = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=20)
    choices = serializers.DictField(
        child=serializers.IntegerField(), required=False, help_text="field → the lead id whose value wins"
    )


class PipelineStageSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineStage
        fields = ["id", "name", "kind", "position", "color"]
        read_only_fields = ["id", "position"]


class ScoringRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScoringRule
        fields = ["id", "label", "field", "operator", "value", "points", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]


class AssignmentRuleSerializer(serializers.ModelSerializer):
    agents = serializers.PrimaryKeyRelatedField(many=True, queryset=User.objects.all())

    class Meta:
        model = AssignmentRule
        fields = ["id", "name", "source", "states", "agents", "position", "is_active"]
        read_only_fields = ["id"]

    def validate_agents(self, agents):
        organization = self.context["request"].organization
        members = set(
            Membership.objects.filter(organization=organization, user__in=agents).values_list("user_id", flat=True)
        )
        strangers = [agent.pk for agent in agents if agent.pk not in members]
        if strangers:
            raise serializers.ValidationError(f"Not members of this organization: {strangers}.")
        return agents


class SubmissionSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundSubmission
        fields = [
            "id",
            "source",
            "status",
            "received_at",
            "processed_at",
            "attempts",
            "content_type",
            "headers",
            "context",
            "raw_body",
            "error",
            "lead",
            "idempotency_key",
        ]


class LeadImportSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = LeadImport
        fields = [
            "id",
            "filename",
            "headers",
            "mapping",
            "tags",
            "status",
            "total_rows",
            "processed_rows",
            "percent",
            "created_count",
            "duplicate_count",
            "error_count",
            "failure",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class LeadImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class LeadImportStartSerializer(serializers.Serializer):
    mapping = serializers.DictField(
        child=serializers.CharField(allow_blank=True), help_text="CSV column → lead field ('' skips it)"
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
