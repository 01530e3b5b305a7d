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
def subscription_change_plan(*, organization, plan: Plan, actor=None, request=None) -> Subscription:
    """Move to another plan. During the trial this is free; paid changes go through a provider (billing issue)."""
    from accounts.services import audit_record
    from leadflow.exceptions import ServiceError

    subscription = Subscription.objects.unscoped().select_for_update().filter(organization=organization).first()
    if subscription is None:
        return subscription_start_trial(organization=organization, plan=plan)
    if subscription.status != SubscriptionStatus.TRIALING:
        raise ServiceError("Plan changes on a paid subscription go through checkout.", field="plan")
    if subscription.plan_id == plan.pk:
        return subscription
    old = subscription.plan.code
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
