"""Razorpay's webhook: ``POST /api/webhooks/razorpay/``.

The ``X-Razorpay-Signature`` (hex HMAC-SHA256 of the raw body with RAZORPAY_WEBHOOK_SECRET) is checked over the
exact bytes received, before anything parses them; then the event is recorded once under its
``X-Razorpay-Event-Id`` and answered 200 at once. It is applied in a task (``billing.events``).
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import AuthenticationFailed, ParseError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ..events import billing_event_record, unix_time
from ..models import BillingProvider
from ..providers.razorpay import webhook_signature_valid

logger = logging.getLogger(__name__)


class RazorpayWebhookView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get_authenticate_header(self, request) -> str:
        return 'Signature realm="razorpay"'

    @extend_schema(
        operation_id="webhooks_razorpay",
        request={"application/json": dict},
        responses={
            200: OpenApiResponse(description="{received: true, duplicate: bool}"),
            400: OpenApiResponse(description="The body is not a Razorpay event"),
            401: OpenApiResponse(description="X-Razorpay-Signature does not verify"),
        },
        description="Razorpay subscription, payment, order, payment link and refund events.",
    )
    def post(self, request):
        raw_body = request.body
        if not webhook_signature_valid(raw_body, request.headers.get("X-Razorpay-Signature", "")):
            logger.warning("razorpay webhook: bad or missing signature from %s", request.META.get("REMOTE_ADDR"))
            raise AuthenticationFailed("The signature did not verify.")
        try:
            payload = json.loads(raw_body)
        except ValueError:
            raise ParseError("The body is not JSON.") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
            raise ParseError("The body is not a Razorpay event.")
        # Razorpay names each event in a header; the body's digest stands in if a proxy dropped it.
        event_id = request.headers.get("X-Razorpay-Event-Id") or "body:" + hashlib.sha256(raw_body).hexdigest()
        _, created = billing_event_record(
            provider=BillingProvider.RAZORPAY,
            event_id=event_id,
            event_type=payload["event"],
            payload=payload,
            occurred_at=unix_time(payload.get("created_at")),
        )
        return Response({"received": True, "duplicate": not created})


urlpatterns = [path("razorpay/", RazorpayWebhookView.as_view(), name="webhook-razorpay")]
