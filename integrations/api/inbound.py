"""Where providers post leads: ``/api/webhooks/…``. No session, no CSRF, no API key: each request authenticates
with what its provider sends (a URL token plus an HMAC, Google's key, Meta's app signature). Views read the raw
body, call one service and turn its outcome into the same answers as the ingest API."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import Http404, HttpResponse
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed, ParseError, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from leads.constants import SubmissionStatus
from leads.intake.pipeline import IntakeOutcome

from ..constants import IntegrationProvider
from ..services import inbound

logger = logging.getLogger(__name__)


class StillProcessing(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This delivery is still being processed; retry in a moment."
    default_code = "conflict"


class ProviderWebhookView(APIView):
    """Base: no authentication classes (so no session and no CSRF), no throttle (providers burst from few IPs;
    unknown tokens are a cheap 404), and the raw body is read before anything parses it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    provider: str = ""

    def get_authenticate_header(self, request) -> str:
        # With no authentication classes DRF would turn a refused signature into 403; a bad signature is a 401.
        return 'Signature realm="leadflow-webhooks"'

    def connection(self, token: str):
        connection = inbound.inbound_connection_for_token(public_token=token, provider=self.provider)
        if connection is None:
            raise Http404("No such connection.")
        return connection


def _outcome_response(outcome: IntakeOutcome) -> Response:
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
    return Response(body, status=status.HTTP_201_CREATED if outcome.is_new else status.HTTP_200_OK)


def _signature_refused(error: inbound.InboundSignatureInvalid, exception_class=AuthenticationFailed):
    refused = exception_class(error.message)
    if error.submission_ids:
        refused.submission_id = error.submission_ids[0]
    return refused


class GenericWebhookView(ProviderWebhookView):
    provider = IntegrationProvider.WEBHOOK

    @extend_schema(
        operation_id="webhooks_inbound",
        request={"application/json": dict, "application/x-www-form-urlencoded": dict},
        responses={
            201: OpenApiResponse(description="{id, status: accepted, submission_id, duplicate_of: null}"),
            200: OpenApiResponse(description="A duplicate or a re-delivery: {id, status: duplicate, …}"),
            400: OpenApiResponse(description="Field errors: {type, detail, errors, submission_id}"),
            401: OpenApiResponse(description="The connection has a secret and X-LeadFlow-Signature is wrong"),
            409: OpenApiResponse(description="The same delivery is still being processed"),
            404: OpenApiResponse(description="No connection has this token"),
        },
        description=(
            "Send one lead from Zapier, Pabbly Connect, n8n, Make or your own site, as JSON or form fields. The "
            "connection's mapping turns dotted paths (`data.contact.email`) into lead fields. When the connection "
            "has a secret, sign the raw body: `X-LeadFlow-Signature: sha256=<hex HMAC-SHA256>`. Identical "
            "re-deliveries (or a repeated `Idempotency-Key`) answer like the first time."
        ),
    )
    def post(self, request, token: str):
        connection = self.connection(token)
        try:
            outcome = inbound.generic_webhook_receive(
                connection=connection,
                raw_body=request.body,
                content_type=request.content_type or "",
                headers=request.headers,
                remote_ip=request.META.get("REMOTE_ADDR"),
                idempotency_key=request.headers.get("Idempotency-Key", "").strip()[:200],
            )
        except inbound.InboundSignatureInvalid as error:
            raise _signature_refused(error) from None
        except inbound.InboundInProgress as error:
            conflict = StillProcessing()
            conflict.submission_id = error.submission_id
            raise conflict from None
        return _outcome_response(outcome)


class GoogleAdsWebhookView(ProviderWebhookView):
    provider = IntegrationProvider.GOOGLE_ADS

    @extend_schema(
        operation_id="webhooks_google_ads",
        request={"application/json": dict},
        responses={
            200: OpenApiResponse(description="Stored (empty body), a new lead or a re-delivery"),
            400: OpenApiResponse(description="The lead was stored but has field errors"),
            401: OpenApiResponse(description="google_key does not match the connection"),
            404: OpenApiResponse(description="No Google Ads connection has this token"),
        },
        description="The webhook URL and key to paste in a Google Ads lead form's “Lead delivery” settings.",
    )
    def post(self, request, token: str):
        connection = self.connection(token)
        try:
            outcome = inbound.google_ads_lead_receive(
                connection=connection,
                raw_body=request.body,
                headers=request.headers,
                remote_ip=request.META.get("REMOTE_ADDR"),
            )
        except inbound.InboundSignatureInvalid as error:
            raise _signature_refused(error) from None
        if outcome.status in (SubmissionStatus.REJECTED, SubmissionStatus.FAILED):
            return _outcome_response(outcome)
        return HttpResponse(status=200)  # Google expects 200 and ignores the body


class FacebookWebhookView(APIView):
    """Meta's Lead Ads webhook for the whole app: pages are told apart by the ids in the body."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request):
        """The verification handshake: echo ``hub.challenge`` when the verify token is ours."""
        expected = settings.FACEBOOK_VERIFY_TOKEN
        given = request.query_params.get("hub.verify_token", "")
        if (
            request.query_params.get("hub.mode") == "subscribe"
            and expected
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            return HttpResponse(request.query_params.get("hub.challenge", ""), content_type="text/plain")
        logger.warning("facebook webhook: verification refused (mode %r)", request.query_params.get("hub.mode"))
        return HttpResponse("Verification failed.", status=403, content_type="text/plain")

    @extend_schema(exclude=True)
    def post(self, request):
        try:
            receipt = inbound.facebook_notification_receive(
                raw_body=request.body,
                signature_header=request.headers.get("X-Hub-Signature-256"),
                app_secret=settings.FACEBOOK_APP_SECRET,
                headers=request.headers,
                remote_ip=request.META.get("REMOTE_ADDR"),
            )
        except inbound.InboundSignatureInvalid as error:
            raise _signature_refused(error, PermissionDenied) from None
        except inbound.InboundPayloadInvalid as error:
            raise ParseError(str(error)) from None
        return Response({"received": len(receipt.submission_ids), "queued": receipt.queued})


urlpatterns = [
    path("inbound/<str:token>/", GenericWebhookView.as_view(), name="webhook-inbound"),
    path("google-ads/<str:token>/", GoogleAdsWebhookView.as_view(), name="webhook-google-ads"),
    path("facebook/", FacebookWebhookView.as_view(), name="webhook-facebook"),
]
