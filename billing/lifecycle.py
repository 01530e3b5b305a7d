"""Where a subscription stands, and every change of it.

    trialing ──paid──▶ active ──payment fails──▶ past_due ──grace (BILLING_GRACE_DAYS)──▶ suspended
        │                 ▲                          │                                         │
        └─trial ends──▶ past_due                     └──────────────── payment ◀───────────────┘

Suspended pauses the organization's campaigns (``campaigns_pause_for_billing``): distribution stops, every row
is kept, pages stay open so the owner can pay; a payment resumes exactly what billing paused. Every change is
audited, published and sent to the owners (``notify_owners``). Provider events carry their own time: one older
than the state last applied (``provider_event_at``) changes no status, so late and repeated events are harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from leadflow.realtime import publish

from .invoices import LineSpec, invoice_create
from .models import Invoice, Plan, Subscription, SubscriptionStatus

logger = logging.getLogger(__name__)

S = SubscriptionStatus


def period_end_after(start: datetime, interval: str) -> datetime:
    """One billing period after ``start``: the same day next month (or year), the month's last day if shorter."""
    import calendar

    months = 12 if interval == "yearly" else 1
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


def subscription_transition(
    *, subscription: Subscription, status: str, reason: str, actor=None, at: datetime | None = None
) -> bool:
    """Move a (locked) subscription to ``status``; False when it is already there. Owns every side effect."""
    old = subscription.status
    if old == status:
        return False
    now = at or timezone.now()
    subscription.status = status
    if status == S.PAST_DUE:
        subscription.past_due_since = now
        subscription.last_reminder_at = None
    elif status == S.ACTIVE:
        subscription.past_due_since = None
        subscription.suspended_at = None
        subscription.last_reminder_at = None
    elif status == S.SUSPENDED:
        subscription.suspended_at = now
    elif status == S.CANCELLED:
        subscription.cancelled_at = now
    subscription.save()
    organization = subscription.organization
    changes = {"status": [old, status], "reason": reason}
    if status == S.SUSPENDED:
        from campaigns.services.billing_pause import campaigns_pause_for_billing

        changes["campaigns_paused"] = campaigns_pause_for_billing(organization)
    elif old == S.SUSPENDED and status in (S.ACTIVE, S.TRIALING):
        from campaigns.services.billing_pause import campaigns_resume_after_billing

        changes["campaigns_resumed"] = campaigns_resume_after_billing(organization)
    audit_record(
        organization=organization,
        action="subscription.status_changed",
        actor=actor,
        target=subscription,
        changes=changes,
    )
    publish(organization, "subscription.status_changed", {"from": old, "to": status, "reason": reason})
    subscription_id = subscription.pk
    transaction.on_commit(lambda: _queue_status_notice(subscription_id, old, status, reason))
    logger.info(
        "subscription %s of organization %s: %s → %s (%s)", subscription.pk, organization.pk, old, status, reason
    )
    return True


def _queue_status_notice(subscription_id: int, old: str, new: str, reason: str) -> None:
    from .tasks import send_status_notice

    send_status_notice.delay(subscription_id, old, new, reason)


def subscription_mirror(
    *,
    subscription: Subscription,
    occurred_at: datetime,
    reason: str,
    status: str | None = None,
    plan: Plan | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    cancel_at_period_end: bool | None = None,
) -> bool:
    """Apply what a provider says about a (locked) subscription, unless it is older than what was applied."""
    if subscription.provider_event_at and occurred_at < subscription.provider_event_at:
        logger.info(
            "subscription %s: %s from %s is older than the state applied, ignored", subscription.pk, reason, occurred_at
        )
        return False
    subscription.provider_event_at = occurred_at
    if plan is not None and plan.pk != subscription.plan_id:
        audit_record(
            organization=subscription.organization,
            action="subscription.plan_changed",
            target=subscription,
            changes={"plan": [subscription.plan.code, plan.code], "reason": reason},
        )
        subscription.plan = plan
        if subscription.pending_plan_id == plan.pk:
            subscription.pending_plan = None
    if period_start:
        subscription.current_period_start = period_start
    if period_end:
        subscription.current_period_end = period_end
    if cancel_at_period_end is not None:
        subscription.cancel_at_period_end = cancel_at_period_end
    subscription.save()
    if status and not (status == S.ACTIVE and subscription.status == S.CANCELLED):
        subscription_transition(subscription=subscription, status=status, reason=reason, at=occurred_at)
    return True


def subscription_payment_succeeded(
    *,
    subscription: Subscription,
    gross: Decimal,
    provider_reference: str,
    occurred_at: datetime,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> Invoice:
    """A provider took a subscription payment: invoice it (once per reference) and restore the subscription."""
    price = subscription.price
    description = f"LeadFlow {subscription.plan.name} plan, {subscription.get_interval_display().lower()}"
    if period_start and period_end:
        description += f" ({period_start:%d %b %Y} – {period_end:%d %b %Y})"
    invoice = invoice_create(
        organization=subscription.organization,
        currency=subscription.currency,
        lines=[LineSpec(description, Decimal(1), price.amount if price else gross)],
        provider=subscription.provider,
        provider_reference=provider_reference,
        gross_total=gross,
        paid_at=occurred_at,
        period_start=period_start,
        period_end=period_end,
    )
    # A payment restores a past-due or suspended subscription (never a cancelled one) — unless the provider has
    # said something newer since (a later charge failing), which a late-arriving payment must not undo.
    stale = subscription.provider_event_at and occurred_at < subscription.provider_event_at
    if subscription.status != S.CANCELLED and not stale:
        subscription_transition(subscription=subscription, status=S.ACTIVE, reason="payment received", at=occurred_at)
    return invoice


def subscription_payment_failed(*, subscription: Subscription, occurred_at: datetime, reason: str) -> bool:
    if subscription.provider_event_at and occurred_at < subscription.provider_event_at:
        return False
    if subscription.status in (S.ACTIVE, S.TRIALING):
        return subscription_transition(subscription=subscription, status=S.PAST_DUE, reason=reason, at=occurred_at)
    return False


# Beat ---------------------------------------------------------------------------------------------------------------


def trials_expire(*, now: datetime | None = None) -> int:
    """Trials that ended unpaid become past due: the grace period (and its reminders) starts at the trial's end."""
    now = now or timezone.now()
    expired = 0
    ids = Subscription.objects.unscoped().filter(status=S.TRIALING, trial_ends_at__lte=now).values_list("pk", flat=True)
    for pk in ids:
        with transaction.atomic():
            subscription = Subscription.objects.unscoped().select_for_update().get(pk=pk)
            if subscription.status == S.TRIALING and subscription.trial_ends_at <= now:
                expired += subscription_transition(
                    subscription=subscription, status=S.PAST_DUE, reason="trial ended", at=subscription.trial_ends_at
                )
    return expired


def suspensions_apply(*, now: datetime | None = None) -> int:
    """Past due for longer than the grace period: suspended (campaigns paused, data kept)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.BILLING_GRACE_DAYS)
    suspended = 0
    ids = (
        Subscription.objects.unscoped()
        .filter(status=S.PAST_DUE, past_due_since__lte=cutoff)
        .values_list("pk", flat=True)
    )
    for pk in ids:
        with transaction.atomic():
            subscription = Subscription.objects.unscoped().select_for_update().get(pk=pk)
            if subscription.status == S.PAST_DUE and subscription.past_due_since <= cutoff:
                suspended += subscription_transition(
                    subscription=subscription, status=S.SUSPENDED, reason="grace period over", at=now
                )
    return suspended


def _reminder_due(subscription: Subscription, now: datetime) -> str | None:
    last = subscription.last_reminder_at
    if subscription.status == S.TRIALING and subscription.trial_ends_at and now < subscription.trial_ends_at:
        marks = [
            subscription.trial_ends_at - timedelta(days=days)
            for days in settings.BILLING_TRIAL_REMINDER_DAYS
            if subscription.trial_ends_at - timedelta(days=days) <= now
        ]
        if marks and (last is None or last < max(marks)):
            return "trial_ending"
    if subscription.status == S.PAST_DUE and subscription.past_due_since:
        every = timedelta(days=settings.BILLING_REMINDER_EVERY_DAYS)
        if now >= (last or subscription.past_due_since) + every:
            return "payment_due"
    return None


def reminders_send(*, now: datetime | None = None) -> int:
    """Trial-ending and payment-due reminders, each at most once per mark (``last_reminder_at``)."""
    from .notifications import Notice, notify_owners

    now = now or timezone.now()
    sent = 0
    candidates = (
        Subscription.objects.unscoped().filter(status__in=[S.TRIALING, S.PAST_DUE]).values_list("pk", flat=True)
    )
    for pk in candidates:
        with transaction.atomic():
            subscription = (
                Subscription.objects.unscoped().select_for_update().select_related("plan", "organization").get(pk=pk)
            )
            kind = _reminder_due(subscription, now)
            if kind is None:
                continue
            subscription.last_reminder_at = now
            subscription.save(update_fields=["last_reminder_at", "updated_at"])
            context = {"subscription": subscription, "now": now}
            if kind == "trial_ending":
                days = max(
                    1,
                    (subscription.trial_ends_at - now).days + (1 if (subscription.trial_ends_at - now).seconds else 0),
                )
                notice = Notice(
                    f"Your LeadFlow trial ends in {days} day{'s' if days != 1 else ''}",
                    "trial_ending",
                    {**context, "days_left": days},
                )
            else:
                notice = Notice(
                    "Your LeadFlow payment is overdue",
                    "payment_due",
                    {**context, "grace_ends_at": subscription.grace_ends_at},
                )
            organization = subscription.organization
            transaction.on_commit(lambda o=organization, n=notice: notify_owners(organization=o, notice=n))
            sent += 1
    return sent
