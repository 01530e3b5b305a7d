"""Delivering sold leads to buyers: one ``SaleDelivery`` per sale and delivery method, after the sale commits.

How a sale travels:

1. ``lead_distribute`` commits the sale and wakes the worker (``sales_deliver_on_commit``: one task per burst).
2. The task locks the organization's unplanned sales and, once only (``LeadSale.deliveries_planned_at``), creates a
   delivery per active method of the buyer, unique per (sale, method). A signed webhook or a CRM post becomes a message and a
   ``WebhookDelivery`` of the integrations machinery (signed, retried with backoff, every attempt logged, circuit
   breaker) keyed ``sale:<sale>:method:<method>``, so planning twice never sends twice.
3. Email, SMS and WhatsApp are sent here: ``sale_delivery_attempt`` claims a due delivery under a lock (a lease on
   ``next_attempt_at``), sends without holding a transaction, then records the result and its usage record in one
   transaction, or schedules the next try (``SALE_DELIVERY_RETRY_DELAYS``).
4. Beat's ``sweep_sale_deliveries`` plans sales whose task was lost and sends what is due.

Sends are at least once: a worker that dies between the provider accepting a message and the result being saved
sends it again after the lease. Everything else is exactly once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from email.utils import make_msgid

import redis
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.utils import timezone

from accounts.services import audit_record
from integrations.constants import WebhookEndpointPurpose
from integrations.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from integrations.services.webhooks import (
    deliveries_enqueue,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
    webhook_message_id_generate,
    webhook_messages_create,
)
from leadflow.exceptions import ServiceError
from leadflow.redis import redis_client, redis_key
from leadflow.wakeups import wake
from leads.intake.normalize import NormalizationError, normalize_email, normalize_phone
from messaging.constants import Channel
from messaging.providers import SendError, SendResult, send_sms, send_whatsapp
from messaging.services.metering import usage_record

from ..constants import (
    MESSAGE_DELIVERY_KINDS,
    SALE_DELIVERY_RETRY_DELAYS,
    DeliveryKind,
    SaleDeliveryStatus,
)
from ..delivery_content import (
    SALE_WEBHOOK_EVENT,
    field_template_errors,
    field_template_render,
    sale_alert_text,
    sale_alert_variables,
    sale_email,
    sale_webhook_data,
)
from ..models import Buyer, DeliveryMethod, LeadSale, SaleDelivery

logger = logging.getLogger(__name__)

# While a send is in flight its delivery is not due, so a second task or the sweep leaves it alone.
ATTEMPT_LEASE = timedelta(minutes=2)
# Retries this close are queued with a countdown; later ones are left to the sweep (brokers hold long delays badly).
COUNTDOWN_AT_MOST = timedelta(minutes=5)
# A sale whose delivery task has not planned it after this long is planned by the sweep.
UNPLANNED_AFTER = timedelta(minutes=1)

_PURPOSES = {
    DeliveryKind.WEBHOOK: WebhookEndpointPurpose.BUYER_WEBHOOK,
    DeliveryKind.CRM: WebhookEndpointPurpose.BUYER_CRM,
}


# Delivery methods ---------------------------------------------------------------------------------------------------


def _clean_destination(kind: str, destination: str, *, organization) -> str:
    try:
        if kind == DeliveryKind.EMAIL:
            value = normalize_email(destination)
        elif kind in (DeliveryKind.SMS, DeliveryKind.WHATSAPP):
            value = normalize_phone(destination, region=organization.default_phone_region)
        else:
            return ""
    except NormalizationError as error:
        raise ServiceError(str(error), field="destination") from error
    if not value:
        what = "an email address" if kind == DeliveryKind.EMAIL else "a phone number"
        raise ServiceError(f"Enter {what} to deliver to.", field="destination")
    return value


def _clean_template(kind: str, template) -> dict:
    if kind != DeliveryKind.CRM:
        return {}
    errors = field_template_errors(template)
    if errors:
        raise ServiceError(" ".join(errors), field="field_template")
    return dict(template)


@transaction.atomic
def delivery_method_create(
    *,
    buyer: Buyer,
    kind: str,
    destination: str = "",
    url: str = "",
    field_template: dict | None = None,
    is_active: bool = True,
    actor=None,
    request=None,
) -> DeliveryMethod:
    """A new way for ``buyer`` to receive leads. For a webhook or CRM post, ``method.webhook_endpoint.secret`` is
    the signing secret: show it once."""
    if kind not in DeliveryKind.values:
        raise ServiceError("Pick how the buyer receives leads.", field="kind")
    organization = buyer.organization
    method = DeliveryMethod(
        organization=organization,
        buyer=buyer,
        kind=kind,
        destination=_clean_destination(kind, destination, organization=organization),
        field_template=_clean_template(kind, field_template),
        is_active=is_active,
    )
    if kind in _PURPOSES:
        if not (url or "").strip():
            raise ServiceError("Enter the URL to post the leads to.", field="url")
        method.webhook_endpoint = webhook_endpoint_create(
            organization=organization,
            url=url,
            events=[],
            description=f"{buyer.name}: {DeliveryKind(kind).label}"[:200],
            purpose=_PURPOSES[kind],
            actor=actor,
            request=request,
        )
    method.save()
    audit_record(
        organization=organization,
        action="delivery_method.created",
        actor=actor,
        target=method,
        changes={"buyer": buyer.pk, "kind": kind, "destination": method.destination, "url": url or None},
        request=request,
    )
    return method


@transaction.atomic
def delivery_method_update(
    *,
    method: DeliveryMethod,
    destination: str | None = None,
    url: str | None = None,
    field_template: dict | None = None,
    is_active: bool | None = None,
    actor=None,
    request=None,
) -> DeliveryMethod:
    changes = {}
    if destination is not None and method.kind in MESSAGE_DELIVERY_KINDS:
        value = _clean_destination(method.kind, destination, organization=method.buyer.organization)
        if value != method.destination:
            changes["destination"] = [method.destination, value]
            method.destination = value
    if field_template is not None and method.kind == DeliveryKind.CRM:
        value = _clean_template(method.kind, field_template)
        if value != method.field_template:
            changes["field_template"] = [method.field_template, value]
            method.field_template = value
    if is_active is not None and bool(is_active) != method.is_active:
        changes["is_active"] = [method.is_active, bool(is_active)]
        method.is_active = bool(is_active)
    if method.webhook_endpoint_id and (url is not None or "is_active" in changes):
        fields = {"is_active": method.is_active}
        if url is not None:
            fields["url"] = url
        webhook_endpoint_update(endpoint=method.webhook_endpoint, actor=actor, request=request, **fields)
    if changes:
        method.save()
        audit_record(
            organization=method.buyer.organization,
            action="delivery_method.updated",
            actor=actor,
            target=method,
            changes=changes,
            request=request,
        )
    return method


@transaction.atomic
def delivery_method_delete(*, method: DeliveryMethod, actor=None, request=None) -> None:
    """Remove a method that never delivered anything; one with history is turned off instead (kept for the log)."""
    if SaleDelivery.objects.unscoped().filter(method_id=method.pk).exists():
        raise ServiceError("This method has delivered leads; turn it off instead, so its history stays.")
    endpoint = method.webhook_endpoint
    audit_record(
        organization=method.buyer.organization,
        action="delivery_method.deleted",
        actor=actor,
        target=method,
        changes={"kind": method.kind, "destination": method.destination},
        request=request,
    )
    method.delete()
    if endpoint is not None:
        webhook_endpoint_delete(endpoint=endpoint, actor=actor, request=request)


# Planning -----------------------------------------------------------------------------------------------------------


# The worker is woken once per burst, as the outbox does: the first sale of an organization sets a short Redis flag
# and queues one task; sales committed while it stands wait for that task, which clears the flag before reading
# and plans every unplanned sale in batches. A task per sale cost the worker (and the two cores) more than the
# deliveries themselves.
WAKE_UP_TTL_S = 5
PLAN_BATCH = 200
# A steady stream of sales (20 a second) would still wake one task per sale, each finishing before the next sale:
# a task that ends marks the organization as planned just now for this long, and the next wake-up within it queues
# its task to start when it ends, so the sales of that moment are planned together. A sale after a quiet spell is
# planned at once; in a stream, a sale waits at most this long more for its deliveries to start.
PLAN_COOL_DOWN_S = 0.2


def _wake_up_flag(organization_id: int) -> str:
    return redis_key(f"sale-deliveries-wake:{organization_id}")


def _planned_flag(organization_id: int) -> str:
    return redis_key(f"sale-deliveries-planned:{organization_id}")


def sales_deliver_on_commit(organization_id: int) -> None:
    """Have the organization's new sales delivered once the current transaction commits (the sweep covers a lost
    wake-up)."""
    transaction.on_commit(lambda: wake(("sale-deliveries", organization_id), lambda: _wake_up(organization_id)))


def _wake_up(organization_id: int) -> None:
    from ..tasks import deliver_pending_sales

    client = redis_client()
    countdown = 0.0
    try:
        if client is not None:
            if not client.set(_wake_up_flag(organization_id), 1, nx=True, ex=WAKE_UP_TTL_S):
                return
            countdown = max(client.pttl(_planned_flag(organization_id)), 0) / 1000
    except redis.RedisError:
        logger.warning("no wake-up flag for the sales of %s; queuing a task anyway", organization_id)
    try:
        if countdown:
            deliver_pending_sales.apply_async((organization_id,), countdown=countdown)
        else:
            deliver_pending_sales.delay(organization_id)
    except Exception:
        logger.warning("sales of %s could not be queued for delivery; the sweep will", organization_id, exc_info=True)
        if client is not None:
            with contextlib.suppress(redis.RedisError):
                client.delete(_wake_up_flag(organization_id))


def sales_deliver_pending(*, organization_id: int, batches: int = 50) -> int:
    """Plan and send the organization's sales not planned yet, a batch at a time; returns how many were sent."""
    client = redis_client()
    if client is not None:
        # Cleared before reading: a sale committed after this point wakes a new task itself.
        with contextlib.suppress(redis.RedisError):
            client.delete(_wake_up_flag(organization_id))
    sent = 0
    for _ in range(batches):
        planned, to_send = _plan_batch(organization_id)
        for delivery_id in to_send:
            sent += sale_delivery_attempt(delivery_id=delivery_id) == SaleDeliveryStatus.SENT
        if planned < PLAN_BATCH:
            break
    if client is not None:
        with contextlib.suppress(redis.RedisError):
            client.set(_planned_flag(organization_id), 1, px=round(PLAN_COOL_DOWN_S * 1000))
    return sent


def _plan_batch(organization_id: int) -> tuple[int, list[int]]:
    """Lock up to ``PLAN_BATCH`` unplanned sales (skipping any another worker holds) and plan them: one statement
    for all the sales whose buyers have no delivery method, the per-method work for the others.

    The sales are locked by a lean statement of their own; the lead, campaign and buyer a delivery is made of are
    read only for the sales whose buyers have a delivery method (building that three-table query for every sale
    cost the worker more than planning it).
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_UNPLANNED_SQL, {"organization": organization_id, "limit": PLAN_BATCH})
            locked = cursor.fetchall()
        if not locked:
            return 0, []
        methods: dict[int, list[DeliveryMethod]] = {}
        for method in (
            DeliveryMethod.objects.unscoped()
            .filter(buyer_id__in={buyer_id for _, buyer_id, _ in locked}, is_active=True)
            .select_related("webhook_endpoint")
            .order_by("id")
        ):
            methods.setdefault(method.buyer_id, []).append(method)
        now = timezone.now()
        to_send: list[int] = []
        delivered = [sale_id for sale_id, buyer_id, _ in locked if buyer_id in methods]
        if delivered:
            sales = (
                _sale_for_delivery(LeadSale.objects.unscoped()).filter(pk__in=delivered).order_by("created_at", "id")
            )
            for sale in sales:
                to_send += _plan_locked(sale, methods[sale.buyer_id], now)
        LeadSale.objects.unscoped().filter(pk__in=[sale_id for sale_id, _, _ in locked]).update(
            deliveries_planned_at=now
        )
        sales_announce_delivered(
            organization_id,
            [LeadSale(pk=sale_id, buyer_id=buyer_id, lead_id=lead_id) for sale_id, buyer_id, lead_id in locked],
        )
    return len(locked), to_send


# The oldest unplanned sales of an organization, locked (``campaigns_sale_unplanned_idx``); SKIP LOCKED leaves those
# another worker is planning to it.
_LOCK_UNPLANNED_SQL = f"""
SELECT id, buyer_id, lead_id FROM {LeadSale._meta.db_table}
 WHERE organization_id = %(organization)s AND deliveries_planned_at IS NULL
 ORDER BY created_at, id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
"""  # noqa: S608 - the table name comes from the model; every value is bound


def sales_announce_delivered(organization_id: int, sales: Sequence[LeadSale]) -> None:
    """A ``lead.delivered`` outbox event per sale as its deliveries are planned (once per sale): automations and
    the buyers' notifications take it from there."""
    from leads.models import OutboxEvent
    from leads.services.outbox import outbox_wake_on_commit

    if not sales:
        return
    OutboxEvent.objects.unscoped().bulk_create(
        [
            OutboxEvent(
                organization_id=organization_id,
                topic="lead.delivered",
                payload={"lead_id": sale.lead_id, "sale_id": sale.pk, "buyer_id": sale.buyer_id},
            )
            for sale in sales
        ]
    )
    outbox_wake_on_commit(organization_id, "lead.delivered")


def _sale_for_delivery(queryset):
    return queryset.select_related("lead", "campaign", "buyer__organization")


def sale_deliveries_plan(*, sale_id: int) -> list[int]:
    """Create one sale's deliveries (once) and hand its webhooks to the integrations queue. Returns the ids of the
    email, SMS and WhatsApp deliveries made now, for the caller to send."""
    with transaction.atomic():
        sale = (
            _sale_for_delivery(LeadSale.objects.unscoped().select_for_update(of=("self",))).filter(pk=sale_id).first()
        )
        if sale is None or sale.deliveries_planned_at is not None:
            return []
        methods = list(
            DeliveryMethod.objects.unscoped()
            .filter(buyer_id=sale.buyer_id, is_active=True)
            .select_related("webhook_endpoint")
            .order_by("id")
        )
        now = timezone.now()
        to_send = _plan_locked(sale, methods, now)
        sale.deliveries_planned_at = now
        sale.save(update_fields=["deliveries_planned_at"])
        sales_announce_delivered(sale.organization_id, [sale])
    return to_send


def _plan_locked(sale: LeadSale, methods: list[DeliveryMethod], now) -> list[int]:
    """A delivery per method for a sale whose row the caller has locked; returns the ones to send here."""
    to_send = []
    for method in methods:
        delivery = SaleDelivery(
            organization_id=sale.organization_id, sale=sale, method=method, kind=method.kind, created_at=now
        )
        if method.kind in MESSAGE_DELIVERY_KINDS:
            delivery.save()
            to_send.append(delivery.pk)
            continue
        endpoint = method.webhook_endpoint
        if endpoint is None or not endpoint.is_active:
            delivery.status, delivery.next_attempt_at = SaleDeliveryStatus.FAILED, None
            delivery.last_error = "The webhook endpoint is turned off."
            delivery.save()
            continue
        message = _webhook_message(sale, method)
        deliveries_enqueue(messages=[message], endpoints=[endpoint])
        delivery.webhook_delivery = WebhookDelivery.objects.unscoped().get(message=message, endpoint=endpoint)
        delivery.status, delivery.next_attempt_at = SaleDeliveryStatus.HANDED_OFF, None
        delivery.save()
    return to_send


def _webhook_message(sale: LeadSale, method: DeliveryMethod) -> WebhookMessage:
    """The message a webhook or CRM method posts, stored once per (sale, method)."""
    source_key = f"sale:{sale.pk}:method:{method.pk}"
    organization = sale.buyer.organization
    if method.kind == DeliveryKind.WEBHOOK:
        [message] = webhook_messages_create(
            organization=organization,
            event_type=SALE_WEBHOOK_EVENT,
            items=[(source_key, sale_webhook_data(sale), sale.created_at)],
        )
        return message
    # A CRM gets exactly its template's fields, not LeadFlow's envelope.
    WebhookMessage.objects.unscoped().bulk_create(
        [
            WebhookMessage(
                organization=organization,
                message_id=webhook_message_id_generate(),
                event_type=f"{SALE_WEBHOOK_EVENT}.crm",
                payload=field_template_render(method.field_template, sale),
                source_key=source_key,
            )
        ],
        ignore_conflicts=True,
    )
    return WebhookMessage.objects.unscoped().get(organization=organization, source_key=source_key)


# Sending ------------------------------------------------------------------------------------------------------------


def _claim(delivery_id: int) -> SaleDelivery | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            SaleDelivery.objects.unscoped()
            .select_for_update(of=("self",), skip_locked=True)
            .select_related("method", "sale__lead", "sale__campaign", "sale__buyer__organization")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != SaleDeliveryStatus.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = now + ATTEMPT_LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        return delivery


def _send(delivery: SaleDelivery) -> tuple[SendResult, str]:
    """Send one delivery; returns the result and the usage channel. Raises ``SendError``."""
    sale, method = delivery.sale, delivery.method
    if not method.is_active:
        raise SendError("The delivery method was turned off.", retryable=False)
    if delivery.kind == DeliveryKind.SMS:
        return send_sms(to=method.destination, body=sale_alert_text(sale)), Channel.SMS
    if delivery.kind == DeliveryKind.WHATSAPP:
        result = send_whatsapp(to=method.destination, body=sale_alert_text(sale), variables=sale_alert_variables(sale))
        return result, Channel.WHATSAPP
    subject, body = sale_email(sale)
    message_id = make_msgid(domain="leadflow.local")
    try:
        EmailMessage(subject, body, to=[method.destination], headers={"Message-ID": message_id}).send()
    except Exception as error:  # SMTP refusals and outages alike: the schedule retries, then gives up
        raise SendError(f"{type(error).__name__}: {error}") from error
    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
    cost = settings.USAGE_COSTS["email"]
    return SendResult(f"email:{backend}", message_id, cost, settings.USAGE_COST_CURRENCY, True), Channel.EMAIL


def sale_delivery_attempt(*, delivery_id: int) -> str | None:
    """Try one email, SMS or WhatsApp delivery if it is due; returns its new status, or ``None`` if nothing to do."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    try:
        result, channel = _send(delivery)
        error = None
    except SendError as failure:
        result, channel, error = None, None, failure
    now = timezone.now()
    retry_in = None
    with transaction.atomic():
        if error is None:
            delivery.status, delivery.sent_at, delivery.next_attempt_at = SaleDeliveryStatus.SENT, now, None
            delivery.provider, delivery.provider_message_id = result.provider[:40], result.message_id[:120]
            delivery.last_error = ""
            usage_record(
                organization_id=delivery.organization_id,
                channel=channel,
                provider=result.provider,
                source_key=f"sale-delivery:{delivery.pk}",
                cost=result.cost,
                currency=result.currency,
                cost_is_estimate=result.cost_is_estimate,
                provider_message_id=result.message_id,
                description=f"Lead {delivery.sale.lead_id} to {delivery.sale.buyer.name}",
                context={
                    "buyer_id": delivery.sale.buyer_id,
                    "sale_id": delivery.sale_id,
                    "lead_id": delivery.sale.lead_id,
                },
            )
        else:
            delivery.last_error = error.message[:500]
            if error.retryable and delivery.attempts <= len(SALE_DELIVERY_RETRY_DELAYS):
                retry_in = timedelta(seconds=SALE_DELIVERY_RETRY_DELAYS[delivery.attempts - 1])
                delivery.next_attempt_at = now + retry_in
            else:
                delivery.status, delivery.next_attempt_at = SaleDeliveryStatus.FAILED, None
        delivery.save(
            update_fields=["status", "sent_at", "next_attempt_at", "provider", "provider_message_id", "last_error"]
        )
        if retry_in is not None and retry_in <= COUNTDOWN_AT_MOST:
            _retry_on_commit(delivery.pk, retry_in)
    return delivery.status


def _retry_on_commit(delivery_id: int, delay: timedelta) -> None:
    from ..tasks import send_sale_delivery

    def enqueue() -> None:
        try:
            send_sale_delivery.apply_async((delivery_id,), countdown=delay.total_seconds())
        except Exception:
            logger.warning("sale delivery %s retry could not be queued; the sweep will", delivery_id, exc_info=True)

    transaction.on_commit(enqueue)


def sales_deliver(*, sale_ids: Sequence[int]) -> int:
    """Plan each sale and send its email, SMS and WhatsApp deliveries now; returns how many were sent."""
    sent = 0
    for sale_id in sale_ids:
        for delivery_id in sale_deliveries_plan(sale_id=sale_id):
            sent += sale_delivery_attempt(delivery_id=delivery_id) == SaleDeliveryStatus.SENT
    return sent


def sale_delivery_retry(*, delivery: SaleDelivery, actor=None, request=None) -> SaleDelivery:
    """Send a failed email, SMS or WhatsApp delivery again now (a webhook is replayed from its own delivery)."""
    if delivery.kind not in MESSAGE_DELIVERY_KINDS:
        raise ServiceError("Replay a webhook from its webhook delivery.", field="kind")
    with transaction.atomic():
        delivery = SaleDelivery.objects.unscoped().select_for_update().get(pk=delivery.pk)
        if delivery.status == SaleDeliveryStatus.SENT:
            raise ServiceError("This delivery was sent.", field="status")
        delivery.status, delivery.next_attempt_at = SaleDeliveryStatus.PENDING, timezone.now()
        delivery.save(update_fields=["status", "next_attempt_at"])
        audit_record(
            organization=delivery.sale.buyer.organization,
            action="sale_delivery.retried",
            actor=actor,
            target=delivery,
            request=request,
        )
    _retry_on_commit_now(delivery.pk)
    return delivery


def _retry_on_commit_now(delivery_id: int) -> None:
    from ..tasks import send_sale_delivery

    transaction.on_commit(lambda: send_sale_delivery.delay(delivery_id))


def sale_deliveries_sweep(*, limit: int = 1000) -> dict[str, int]:
    """Beat: plan sales a lost task left unplanned, and queue deliveries whose retry is due."""
    from ..tasks import deliver_sales, send_sale_delivery

    now = timezone.now()
    unplanned = list(
        LeadSale.objects.unscoped()
        .filter(deliveries_planned_at__isnull=True, created_at__lte=now - UNPLANNED_AFTER)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for start in range(0, len(unplanned), 50):
        deliver_sales.delay(unplanned[start : start + 50])
    due = list(
        SaleDelivery.objects.unscoped()
        .filter(status=SaleDeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        send_sale_delivery.delay(delivery_id)
    return {"planned": len(unplanned), "due": len(due)}


def buyer_webhook_endpoints(buyer: Buyer):
    return WebhookEndpoint.objects.filter(buyer_delivery_method__buyer=buyer)
