from __future__ import annotations

from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.constants import ApiKeyScope, Role
from accounts.models import Membership
from campaigns import intake as campaign_intake
from leadflow.api.viewsets import OrganizationModelViewSet, OrganizationScopedViewSet
from leadflow.wakeups import wakeups_held

from .. import selectors
from ..constants import SubmissionStatus
from ..exports import export_filename, stream_leads_csv
from ..filters import LeadFilter
from ..intake.pipeline import IntakeOutcome, body_digest, submission_process, submission_store
from ..models import AssignmentRule, InboundSubmission, Lead, LeadImport, PipelineStage, ScoringRule
from ..services import imports, leads, merge, quota, stages
from . import serializers as s


class LeadCursorPagination(CursorPagination):
    """Keyset pages: no COUNT(*), no OFFSET, fast at any depth."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-received_at", "-id")


def _lead_summary_queryset(queryset):
    return queryset.select_related("stage", "owner")


class LeadViewSet(OrganizationModelViewSet):
    """The organization's leads. Agents see only the leads assigned to them."""

    queryset = Lead.objects
    serializer_class = s.LeadSerializer
    pagination_class = LeadCursorPagination
    filterset_class = LeadFilter
    ordering_fields = ["received_at", "score", "updated_at"]
    search_fields: list[str] = []  # search is the `q` filter (full text + trigram)
    summary_actions = ("usage",)  # answers figures, not leads
    read_role = Role.VIEWER
    write_role = Role.AGENT
    action_roles = {
        "destroy": Role.MANAGER,
        "assign": Role.MANAGER,
        "bulk": Role.MANAGER,
        "export": Role.MANAGER,
        "merge": Role.MANAGER,
        "merge_preview": Role.MANAGER,
    }

    def safely_get_queryset(self, queryset):
        queryset = selectors.leads_visible_to(getattr(self.request, "membership", None))
        if self.action == "list":
            return queryset  # ``list`` picks the row's columns itself
        return _lead_summary_queryset(queryset).defer("search_vector", "search_text")

    def list(self, request, *args, **kwargs):
        # Only the row's columns, as dicts: the search columns, custom fields and score reasons are most of a lead's
        # bytes, and a page of 50 needs neither them nor model instances.
        params = request.query_params
        with selectors.search_plan(params.get("q", ""), tags=params.get("tag", "")):
            queryset = self.filter_queryset(self.get_queryset()).values(*s.LIST_VALUES)
            page = self.paginate_queryset(queryset)
            return self.get_paginated_response([s.lead_list_row(row) for row in page])

    def get_serializer_class(self):
        if self.action == "list":
            return s.LeadListSerializer
        if self.action in ("update", "partial_update"):
            return s.LeadUpdateSerializer
        if self.action == "create":
            return s.LeadIngestSerializer
        return super().get_serializer_class()

    def _actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    @extend_schema(request=s.LeadIngestSerializer, responses={201: s.LeadSerializer, 200: s.LeadSerializer})
    def create(self, request, *args, **kwargs):
        """Add a lead by hand (source `manual`); it goes through the same intake pipeline as every source."""
        outcome = _ingest(request, source="manual", actor=self._actor())
        if outcome.status in (SubmissionStatus.REJECTED, SubmissionStatus.FAILED):
            raise ValidationError(outcome.errors)
        lead = self.get_queryset().get(pk=outcome.lead.pk) if outcome.lead else None
        code = status.HTTP_201_CREATED if outcome.is_new else status.HTTP_200_OK
        return Response(s.LeadSerializer(lead).data, status=code)

    @extend_schema(request=s.LeadUpdateSerializer, responses=s.LeadSerializer)
    def update(self, request, *args, **kwargs):
        lead = self.get_object()
        serializer = s.LeadUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        # Use the raw values: normalization happens in the service, the same way as at intake.
        for name in list(data):
            if name in request.data and name not in ("stage", "deal_value"):
                data[name] = request.data[name]
        actor = self._actor()
        with transaction.atomic():
            stage = data.pop("stage", None)
            owner_given = "owner" in data
            owner_id = data.pop("owner", None)
            tags = data.pop("tags", None)
            if data:
                leads.lead_update(lead=lead, actor=actor, data=data)
            if stage is not None:
                leads.lead_change_stage(lead=lead, stage=stage, actor=actor)
            if owner_given:
                self._require(Role.MANAGER)
                leads.lead_assign(lead=lead, owner=_member_user(owner_id), actor=actor)
            if tags is not None:
                leads.lead_set_tags(lead=lead, actor=actor, add=tags, remove=[t for t in lead.tags if t not in tags])
        return Response(s.LeadSerializer(self.get_queryset().get(pk=lead.pk)).data)

    def perform_destroy(self, instance):
        leads.lead_delete(lead=instance, actor=self._actor(), request=self.request)

    def _require(self, role):
        membership = getattr(self.request, "membership", None)
        if membership is not None and not membership.has_role(role):
            from rest_framework.exceptions import PermissionDenied

            raise PermissionDenied(f"This needs the {Role(role).label.lower()} role or higher.")

    @extend_schema(request=s.NoteSerializer, responses=s.NoteSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def notes(self, request, pk=None):
        lead = self.get_object()
        if request.method == "POST":
            serializer = s.NoteSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            note = leads.lead_add_note(lead=lead, author=self._actor(), body=serializer.validated_data["body"])
            return Response(s.NoteSerializer(note).data, status=status.HTTP_201_CREATED)
        notes = lead.notes.select_related("author").order_by("-created_at", "-id")
        return Response(s.NoteSerializer(notes, many=True).data)

    @extend_schema(responses=s.ActivitySerializer(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        lead = self.get_object()
        return Response(s.ActivitySerializer(selectors.lead_timeline(lead)[:500], many=True).data)

    @extend_schema(request=s.WonSerializer, responses=s.LeadSerializer)
    @action(detail=True, methods=["post"])
    def won(self, request, pk=None):
        lead = self.get_object()
        serializer = s.WonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        leads.lead_mark_won(
            lead=lead,
            actor=self._actor(),
            amount=serializer.validated_data.get("amount"),
            won_on=serializer.validated_data.get("date"),
        )
        return Response(s.LeadSerializer(self.get_queryset().get(pk=lead.pk)).data)

    @extend_schema(request=s.LostSerializer, responses=s.LeadSerializer)
    @action(detail=True, methods=["post"])
    def lost(self, request, pk=None):
        lead = self.get_object()
        serializer = s.LostSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        leads.lead_mark_lost(lead=lead, actor=self._actor(), reason=serializer.validated_data["reason"])
        return Response(s.LeadSerializer(self.get_queryset().get(pk=lead.pk)).data)

    @extend_schema(request=s.AssignSerializer, responses=s.LeadSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        lead = self.get_object()
        serializer = s.AssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        leads.lead_assign(lead=lead, owner=_member_user(serializer.validated_data["owner"]), actor=self._actor())
        return Response(s.LeadSerializer(self.get_queryset().get(pk=lead.pk)).data)

    @extend_schema(request=s.BulkActionSerializer, responses={200: OpenApiResponse(description='{"updated": n}')})
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        serializer = s.BulkActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        count = leads.leads_bulk_action(
            organization=request.organization,
            queryset=self.get_queryset(),
            actor=self._actor(),
            action=data["action"],
            ids=data["ids"],
            value=data.get("value"),
            request=request,
        )
        return Response({"updated": count})

    @extend_schema(responses={200: OpenApiResponse(description="CSV of the leads matching the filters")})
    @action(detail=False, methods=["get"])
    def export(self, request):
        queryset = self.filter_queryset(self.get_queryset()).order_by("-received_at", "-id")
        response = StreamingHttpResponse(stream_leads_csv(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(request.organization)}"'
        return response

    @extend_schema(responses={200: s.UsageSerializer})
    @action(detail=False, methods=["get"])
    def usage(self, request):
        """Leads counted this month (the organization's time zone) against the plan's monthly quota."""
        return Response(s.UsageSerializer(quota.usage_this_month(request.organization)).data)

    @extend_schema(responses={200: OpenApiResponse(description="A list of tags, most used first")})
    @action(detail=False, methods=["get"])
    def tags(self, request):
        return Response(selectors.all_tags(self.get_queryset()))

    @extend_schema(
        request=s.MergeSerializer,
        responses={200: OpenApiResponse(description="Field → winning value, source lead and candidates")},
    )
    @action(detail=True, methods=["post"], url_path="merge-preview")
    def merge_preview(self, request, pk=None):
        primary, duplicates, choices = self._merge_input()
        return Response(merge.merge_preview(primary=primary, duplicates=duplicates, choices=choices))

    @extend_schema(request=s.MergeSerializer, responses=s.LeadSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        primary, duplicates, choices = self._merge_input()
        lead = merge.leads_merge(
            primary=primary, duplicates=duplicates, choices=choices, actor=self._actor(), request=request
        )
        return Response(s.LeadSerializer(self.get_queryset().get(pk=lead.pk)).data)

    def _merge_input(self):
        primary = self.get_object()
        serializer = s.MergeSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        ids = serializer.validated_data["duplicates"]
        duplicates = list(self.get_queryset().filter(pk__in=ids))
        missing = set(ids) - {d.pk for d in duplicates}
        if missing:
            raise ValidationError({"duplicates": [f"No such leads: {sorted(missing)}."]})
        return primary, duplicates, serializer.validated_data.get("choices")


def _member_user(user_id):
    if user_id is None:
        return None
    membership = Membership.objects.filter(user_id=user_id).select_related("user").first()
    if membership is None:
        raise ValidationError({"owner": ["Pick a member of this organization."]})
    return membership.user


_UNREAD = object()


def _ingest(request, *, source: str, actor=None, context=None, payload=_UNREAD) -> IntakeOutcome:
    """Store the raw request first, then process it; a repeated Idempotency-Key answers like the first time."""
    key = request.headers.get("Idempotency-Key", "").strip()
    submission, created = submission_store(
        organization=request.organization,
        source=source,
        raw_body=request.body,
        content_type=request.content_type or "",
        headers=request.headers,
        context=context,
        remote_ip=request.META.get("REMOTE_ADDR"),
        idempotency_key=key,
    )
    if not created:
        return _replayed(submission, request.body)
    data = _request_payload(request) if payload is _UNREAD else payload
    return submission_process(submission, payload=data, actor=actor)


def _request_payload(request):
    """The parsed body as a dict, or None when it does not parse: the pipeline then parses the stored body again and
    rejects it with the reason. Read once: after a parse error DRF answers an empty body."""
    try:
        data = request.data
    except ParseError:
        return None
    return data.dict() if hasattr(data, "dict") else data


class IdempotencyConflict(ValidationError):
    status_code = status.HTTP_409_CONFLICT


def _replayed(submission: InboundSubmission, body: bytes) -> IntakeOutcome:
    if submission.body_sha256 != body_digest(body):
        raise ValidationError({"Idempotency-Key": ["This key was used with a different body."]})
    if submission.status == SubmissionStatus.RECEIVED:
        raise IdempotencyConflict(
            {"Idempotency-Key": ["A request with this key is still being processed; retry in a moment."]}
        )
    lead = submission.lead
    errors = (submission.error or {}).get("errors", {})
    original = lead.duplicate_of if lead and lead.duplicate_of_id else lead
    return IntakeOutcome(submission, submission.status, lead=lead, original=original, errors=errors)


class LeadIngestViewSet(OrganizationScopedViewSet):
    """The supplier ingest API: one lead per request, through the intake pipeline."""

    queryset = InboundSubmission.objects
    serializer_class = s.LeadIngestSerializer
    parser_classes = [JSONParser, FormParser]
    write_role = Role.MANAGER
    write_scope = ApiKeyScope.INGEST
    read_scope = ApiKeyScope.INGEST

    @extend_schema(
        operation_id="leads_ingest",
        request=s.LeadIngestSerializer,
        responses={
            201: s.IngestResultSerializer,
            200: s.IngestResultSerializer,
            400: OpenApiResponse(
                description="Field errors: {type, detail, errors: {field: [messages]}, submission_id}"
            ),
            401: OpenApiResponse(description="No or an invalid API key"),
            403: OpenApiResponse(description="The key lacks the ingest scope"),
            409: OpenApiResponse(description="The Idempotency-Key is still being processed"),
        },
        description=(
            "Send one lead. It is stored as received before anything else, then normalized, validated and "
            "deduplicated. 201 for a new lead; 200 with `status: duplicate` and `duplicate_of` when the email or "
            "phone arrived within the organization's duplicate window, or the same `external_id` was sent "
            "before. Send an `Idempotency-Key` header to retry safely: the same key answers like the first time."
        ),
    )
    def create(self, request):
        # A lead for a campaign (the body's `campaign`, or the supplier key's only one) is validated against the
        # campaign's category and distributed once stored; the campaigns app does both (campaigns.intake).
        payload = _request_payload(request)
        target = campaign_intake.ingest_target_for(
            organization=request.organization, api_key=request.auth, data=payload
        )
        # The lead commits before its distribution starts: its handlers are woken once both are done, so the
        # worker does not share the cores with the distribution the supplier is waiting for.
        with wakeups_held():
            outcome = _ingest(request, source="api", context=target.context if target else None, payload=payload)
            distribution = campaign_intake.ingest_finish(target=target, outcome=outcome) if target else None
        if outcome.status in (SubmissionStatus.REJECTED, SubmissionStatus.FAILED):
            error = ValidationError(outcome.errors)
            if outcome.status == SubmissionStatus.FAILED:
                error.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            error.submission_id = outcome.submission.pk
            raise error
        body = {
            "id": outcome.lead.pk if outcome.lead else None,
            "status": outcome.status,
            "submission_id": outcome.submission.pk,
            "duplicate_of": outcome.original.pk
            if outcome.original and outcome.status == SubmissionStatus.DUPLICATE
            else None,
        }
        if target is not None:
            body["campaign"] = target.campaign.pk
            body["distribution"] = distribution
        return Response(body, status=status.HTTP_201_CREATED if outcome.is_new else status.HTTP_200_OK)


class PipelineStageViewSet(OrganizationModelViewSet):
    queryset = PipelineStage.objects
    serializer_class = s.PipelineStageSerializer
    pagination_class = None
    filter_backends: list = []

    def perform_create(self, serializer):
        serializer.instance = stages.stage_create(organization=self.request.organization, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = stages.stage_update(stage=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        stages.stage_delete(stage=instance)


class ScoringRuleViewSet(OrganizationModelViewSet):
    queryset = ScoringRule.objects
    serializer_class = s.ScoringRuleSerializer
    filter_backends: list = []


class AssignmentRuleViewSet(OrganizationModelViewSet):
    queryset = AssignmentRule.objects
    serializer_class = s.AssignmentRuleSerializer
    filter_backends: list = []

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("agents")


class SubmissionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Every payload as received, with what became of it; failed and rejected ones can be replayed."""

    queryset = InboundSubmission.objects
    serializer_class = s.SubmissionSerializer
    read_role = Role.MANAGER
    write_role = Role.ADMIN
    filterset_fields = ["status", "source"]
    filter_backends = [DjangoFilterBackend]

    @extend_schema(request=None, responses=s.SubmissionSerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        submission = self.get_object()
        if submission.status in (SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE):
            raise ValidationError({"status": ["This submission already made its lead."]})
        submission_process(submission)
        submission.refresh_from_db()
        return Response(s.SubmissionSerializer(submission).data)


class LeadImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """CSV imports: upload, then start with a column mapping; follow `percent` (or the websocket)."""

    queryset = LeadImport.objects
    serializer_class = s.LeadImportSerializer
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    parser_classes = [MultiPartParser, JSONParser]
    filter_backends: list = []

    def safely_get_queryset(self, queryset):
        return queryset.defer("content")

    @extend_schema(request=s.LeadImportUploadSerializer, responses={201: s.LeadImportSerializer})
    def create(self, request):
        serializer = s.LeadImportUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        lead_import = imports.lead_import_upload(
            organization=request.organization,
            actor=request.user if request.user.is_authenticated else None,
            filename=upload.name,
            content=upload.read(),
        )
        data = s.LeadImportSerializer(lead_import).data
        data["preview"] = imports.import_preview(lead_import)
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.LeadImportStartSerializer, responses=s.LeadImportSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        lead_import = get_object_or_404(LeadImport.objects.all(), pk=self.get_object().pk)
        serializer = s.LeadImportStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        imports.lead_import_start(
            lead_import=lead_import,
            mapping=serializer.validated_data["mapping"],
            tags=serializer.validated_data.get("tags"),
        )
        return Response(s.LeadImportSerializer(LeadImport.objects.get(pk=lead_import.pk)).data)

    @extend_schema(responses={200: OpenApiResponse(description="CSV of the rows that were not imported")})
    @action(detail=True, methods=["get"])
    def errors(self, request, pk=None):
        lead_import = self.get_object()
        response = HttpResponse(imports.import_error_report(lead_import), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{lead_import.pk}-errors.csv"'
        return response
