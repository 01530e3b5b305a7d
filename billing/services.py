"""Writes for billing. Payment providers arrive with the billing issue; today: plans and trials."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Plan, Subscription, SubscriptionStatus


@transaction.atomic
def subscription_start_trial(*, organization, plan: Plan) -> Subscription:
    """Give ``organization`` a trial of ``plan`` (TRIAL_DAYS, 14 by default). Idempotent: an existing one is kept."""
    subscription, _ = Subscription.objects.unscoped().get_or_create(
        organization=organization,
        defaults={
            "plan": plan,
            "status": SubscriptionStatus.TRIALING,
            "currency": organization.currency,
            "trial_ends_at": timezone.now() + timedelta(days=settings.TRIAL_DAYS),
        },
    )
    return subscription


@transaction.atomic
def plans_seed() -> tuple[int, int]:
    """Create or update the catalogue from :mod:`billing.catalogue`; safe to run any number of times.

    Returns (plans created, plans updated).
    """
    from .catalogue import PLANS, YEARLY_MONTHS_BILLED
    from .models import BillingInterval, PlanPrice

    created = updated = 0
    for spec in PLANS:
        fields = {k: v for k, v in spec.items() if k not in ("code", "prices")}
        plan, was_created = Plan.objects.update_or_create(code=spec["code"], defaults=fields)
        created += was_created
        updated += not was_created
        for currency, monthly in spec["prices"].items():
            for interval, amount in (
                (BillingInterval.MONTHLY, monthly),
                (BillingInterval.YEARLY, monthly * YEARLY_MONTHS_BILLED),
            ):
                PlanPrice.objects.update_or_create(
                    plan=plan, currency=currency, interval=interval, defaults={"amount": amount}
                )
    return created, updated


@transaction.atomic
def subscription_change_plan(
    *, organization, plan: Plan, interval: str | None = None, actor=None, request=None
) -> Subscription:
    """Move to another plan. During the trial this is free and immediate. On a paid subscription the provider is
    told: an upgrade applies now (the provider charges the difference), a downgrade at the next renewal
    (``pending_plan`` until the provider's event applies it); the offline provider applies either at once."""
    from accounts.services import audit_record
    from leadflow.exceptions import ServiceError

    from .providers import ProviderError, provider_named

    subscription = Subscription.objects.unscoped().select_for_update().filter(organization=organization).first()
    if subscription is None:
        return subscription_start_trial(organization=organization, plan=plan)
    if subscription.plan_id == plan.pk and (interval in (None, subscription.interval)):
        if subscription.pending_plan_id:
            subscription.pending_plan = None
            subscription.save(update_fields=["pending_plan", "updated_at"])
        return subscription
    if subscription.status in (SubscriptionStatus.CANCELLED, SubscriptionStatus.SUSPENDED, SubscriptionStatus.PAST_DUE):
        raise ServiceError("Pay for the current plan (or subscribe again) before changing it.", field="plan")
    old = subscription.plan.code
    if subscription.status == SubscriptionStatus.ACTIVE:
        interval = interval or subscription.interval
        if interval != subscription.interval:
            raise ServiceError("Switching between monthly and yearly goes through a new checkout.", field="interval")
        price = plan.price_for(subscription.currency, interval)
        current = subscription.price
        if price is None:
            raise ServiceError(f"The {plan.name} plan is not sold in {subscription.currency}.", field="plan")
        upgrade = current is None or price.amount > current.amount
        try:
            applied_now = provider_named(subscription.provider).subscription_change_plan(
                subscription=subscription, price=price, upgrade=upgrade
            )
        except ProviderError as error:
            raise ServiceError(error.message, field="plan") from error
        if applied_now or upgrade:
            subscription.plan = plan
            subscription.pending_plan = None
        else:
            subscription.pending_plan = plan
        subscription.save(update_fields=["plan", "pending_plan", "updated_at"])
        audit_record(
            organization=organization,
            action="subscription.plan_changed"
            if subscription.plan_id == plan.pk
            else "subscription.downgrade_scheduled",
            actor=actor,
            target=subscription,
            changes={"plan": [old, plan.code], "upgrade": upgrade},
            request=request,
        )
        return subscription
    subscription.plan = plan
    subscription.save(update_fields=["plan", "updated_at"])
    audit_record(
        organization=organization,
        action="subscription.plan_changed",
        actor=actor,
        target=subscription,
        changes={"plan": [old, plan.code]},
        request=request,
    )
    return subscription


@transaction.atomic
def subscription_cancel(*, organization, actor=None, request=None) -> Subscription:
    """Cancel at the end of the paid period: the provider stops renewing, and its event marks it cancelled then.
    A trial (or an offline subscription) is cancelled at once."""
    from accounts.services import audit_record
    from leadflow.exceptions import ServiceError

    from .lifecycle import subscription_transition
    from .providers import ProviderError, provider_named

    subscription = (
        Subscription.objects.unscoped()
        .select_for_update()
        .select_related("organization", "plan")
        .get(organization=organization)
    )
    if subscription.status == SubscriptionStatus.CANCELLED:
        raise ServiceError("This subscription is already cancelled.")
    if subscription.provider_subscription_id and subscription.status == SubscriptionStatus.ACTIVE:
        if subscription.cancel_at_period_end:
            return subscription
        try:
            provider_named(subscription.provider).subscription_cancel_at_period_end(subscription=subscription)
        except ProviderError as error:
            raise ServiceError(error.message) from error
        subscription.cancel_at_period_end = True
        subscription.save(update_fields=["cancel_at_period_end", "updated_at"])
        audit_record(
            organization=organization,
            action="subscription.cancel_scheduled",
            actor=actor,
            target=subscription,
            changes={"ends_at": subscription.current_period_end.isoformat() if subscription.current_period_end else ""},
            request=request,
        )
        return subscription
    subscription_transition(
        subscription=subscription, status=SubscriptionStatus.CANCELLED, reason="cancelled by the owner", actor=actor
    )
    return subscription


def subscription_portal_url(*, organization, return_url: str) -> str | None:
    """The provider's page where the customer changes cards or cancels (Stripe's customer portal)."""
    from leadflow.exceptions import ServiceError

    from .providers import ProviderError, provider_named

    subscription = Subscription.objects.unscoped().filter(organization=organization).first()
    if subscription is None or not subscription.provider_customer_id:
        return None
    try:
        return provider_named(subscription.provider).portal_url(subscription=subscription, return_url=return_url)
    except ProviderError as error:
        raise ServiceError(error.message) from error


TRIAL_EXTENSION_MAX_DAYS = 90


@transaction.atomic
def subscription_extend_trial(*, organization, days: int, actor=None, request=None) -> Subscription:
    """Give a trialing workspace ``days`` more (operators, from the admin). A trial that already ran out (past due,
    or suspended after the grace period) starts again from now, which resumes what the suspension paused. A
    workspace that has paid, or cancelled, has no trial left to extend."""
    from accounts.services import audit_record
    from leadflow.exceptions import ServiceError

    from .lifecycle import subscription_transition

    if not 1 <= days <= TRIAL_EXTENSION_MAX_DAYS:
        raise ServiceError(f"Extend by 1 to {TRIAL_EXTENSION_MAX_DAYS} days.", field="days")
    subscription = (
        Subscription.objects.unscoped()
        .select_for_update()
        .select_related("organization", "plan")
        .filter(organization=organization)
        .first()
    )
    if subscription is None:
        raise ServiceError(f"{organization} has no subscription (it never finished onboarding).")
    reopenable = (SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE, SubscriptionStatus.SUSPENDED)
    if subscription.status not in reopenable or subscription.provider_subscription_id:
        raise ServiceError(f"{organization} is {subscription.get_status_display().lower()} on a paid plan: no trial.")
    now = timezone.now()
    previous_end = subscription.trial_ends_at
    subscription.trial_ends_at = max(previous_end or now, now) + timedelta(days=days)
    subscription.save(update_fields=["trial_ends_at", "updated_at"])
    if subscription.status != SubscriptionStatus.TRIALING:
        # Back to a trial: the grace period (and its reminders) will start again when the new trial ends.
        subscription.past_due_since = subscription.suspended_at = subscription.last_reminder_at = None
        subscription_transition(
            subscription=subscription, status=SubscriptionStatus.TRIALING, reason="trial extended", actor=actor
        )
    audit_record(
        organization=organization,
        action="subscription.trial_extended",
        actor=actor,
        target=subscription,
        changes={
            "trial_ends_at": [
                previous_end.isoformat() if previous_end else None,
                subscription.trial_ends_at.isoformat(),
            ],
            "days": days,
        },
        request=request,
    )
    return subscription
