"""Where messaging providers post: ``/api/webhooks/twilio/…``, ``/api/webhooks/whatsapp/`` and anymail's
``/api/webhooks/email/<esp>/{inbound,tracking}/``.

Every request is stored raw first (``ProviderEvent``), its signature checked over exactly what arrived, and
answered at once; a Celery task processes it after commit. A bad signature is stored (rejected, never processed)
and answered 403, which Twilio and Meta treat as "do not retry".
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from .services.inbound import meta_signature_valid, provider_event_store, twilio_signature_valid

logger = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _public_urls(request) -> list[str]:
    """The URLs Twilio may have signed: SITE_URL's (the public one behind a proxy), then the one the request names
    (X-Forwarded-Host and -Proto when the deployment trusts them)."""
    return [settings.SITE_URL + request.get_full_path(), request.build_absolute_uri()]


def _queue(event_id: int) -> None:
    from .tasks import process_provider_event

    transaction.on_commit(lambda: process_provider_event.delay(event_id))


def _twilio(request, kind: str) -> HttpResponse:
    raw = request.body
    params = {key: request.POST.get(key) for key in request.POST}
    valid = twilio_signature_valid(
        urls=_public_urls(request), params=params, signature=request.headers.get("X-Twilio-Signature")
    )
    event = provider_event_store(
        provider="twilio",
        kind=kind,
        raw_body=raw,
        content_type=request.content_type,
        headers=request.headers,
        url=settings.SITE_URL + request.get_full_path(),
        signature_valid=valid,
    )
    if not valid:
        logger.warning("twilio %s webhook: bad X-Twilio-Signature (event %s)", kind, event.pk)
        return HttpResponse("Invalid signature.", status=403, content_type="text/plain")
    _queue(event.pk)
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_message(request):
    """A message to one of the organizations' Twilio numbers (SMS or WhatsApp). Answered with empty TwiML."""
    return _twilio(request, "message")


@csrf_exempt
@require_POST
def twilio_status(request):
    """A status callback of a message we sent (queued, sent, delivered, read, undelivered, failed …)."""
    return _twilio(request, "status")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp(request):
    """Meta's WhatsApp Cloud API webhook: the GET verification handshake, then signed POST notifications."""
    if request.method == "GET":
        expected = settings.WHATSAPP_VERIFY_TOKEN
        given = request.GET.get("hub.verify_token", "")
        if (
            request.GET.get("hub.mode") == "subscribe"
            and expected
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        logger.warning("whatsapp webhook: verification refused (mode %r)", request.GET.get("hub.mode"))
        return HttpResponse("Verification failed.", status=403, content_type="text/plain")
    raw = request.body
    valid = meta_signature_valid(
        app_secret=settings.WHATSAPP_APP_SECRET, body=raw, header=request.headers.get("X-Hub-Signature-256")
    )
    event = provider_event_store(
        provider="meta",
        kind="whatsapp",
        raw_body=raw,
        content_type=request.content_type,
        headers=request.headers,
        url=settings.SITE_URL + request.get_full_path(),
        signature_valid=valid,
    )
    if not valid:
        logger.warning("whatsapp webhook: bad X-Hub-Signature-256 (event %s)", event.pk)
        return HttpResponse("Invalid signature.", status=403, content_type="text/plain")
    _queue(event.pk)
    return HttpResponse("EVENT_RECEIVED", content_type="text/plain")


urlpatterns = [
    path("twilio/messages/", twilio_message, name="messaging-webhook-twilio-message"),
    path("twilio/status/", twilio_status, name="messaging-webhook-twilio-status"),
    path("whatsapp/", whatsapp, name="messaging-webhook-whatsapp"),
    path("email/", include("anymail.urls")),
]
