"""Celery tasks of billing: thin wrappers over services. Periodic ones are scheduled in CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

from celery import shared_task

from . import events, lifecycle, metering


@shared_task
def process_billing_event(event_pk: int) -> str | None:
    event = events.billing_event_process(event_pk=event_pk)
    return event.status if event else None


@shared_task
def sweep_billing_events() -> int:
    return events.billing_events_sweep()


@shared_task
def expire_trials() -> int:
    return lifecycle.trials_expire()


@shared_task
def send_billing_reminders() -> int:
    return lifecycle.reminders_send()


@shared_task
def suspend_after_grace() -> int:
    return lifecycle.suspensions_apply()


@shared_task
def invoice_metered_usage() -> int:
    return len(metering.usage_invoice_previous_month())


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_status_notice(subscription_id: int, old: str, new: str, reason: str) -> None:
    from .models import Subscription, SubscriptionStatus
    from .notifications import Notice, notify_owners

    subscription = (
        Subscription.objects.unscoped().select_related("plan", "organization").filter(pk=subscription_id).first()
    )
    if subscription is None:
        return
    labels = dict(SubscriptionStatus.choices)
    notice = Notice(
        f"Your LeadFlow subscription is {labels[new].lower()}",
        "status_changed",
        {
            "subscription": subscription,
            "old": labels.get(old, old),
            "new": labels[new],
            "new_code": new,
            "reason": reason,
        },
    )
    notify_owners(organization=subscription.organization, notice=notice)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invoice_email(invoice_id: int) -> int:
    from .invoices import invoice_email_send
    from .models import Invoice

    invoice = Invoice.objects.unscoped().select_related("organization").filter(pk=invoice_id).first()
    return invoice_email_send(invoice=invoice) if invoice else 0


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_checkout_welcome(user_id: int, organization_id: int, new_account: bool) -> None:
    from .emails import checkout_welcome_send

    checkout_welcome_send(user_id=user_id, organization_id=organization_id, new_account=new_account)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_recharge_failed_alert(top_up_id: int) -> None:
    from .models import WalletTopUp
    from .notifications import Notice, notify_owners

    top_up = WalletTopUp.objects.unscoped().select_related("buyer", "organization").filter(pk=top_up_id).first()
    if top_up is None:
        return
    notice = Notice(f"Auto-recharge failed for {top_up.buyer.name}", "recharge_failed", {"top_up": top_up})
    notify_owners(organization=top_up.organization, notice=notice)
