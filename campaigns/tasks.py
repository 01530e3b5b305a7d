"""Celery tasks of the campaigns app: thin wrappers over its services, each safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def deliver_pending_sales(organization_id: int) -> int:
    """Plan the organization's new sales' deliveries (once per sale and method) and send their emails, SMS and
    WhatsApp messages; queued once per burst of sales.

    The ``lead.delivered`` events each batch of plans writes are handled here as soon as they commit, a batch at a
    time as their own task would: queuing that task cost the worker more than handling them.
    """
    from leads.services.outbox import outbox_handled_in_process

    from .services.deliveries import sales_deliver_pending

    with outbox_handled_in_process():
        return sales_deliver_pending(organization_id=organization_id)


@shared_task(acks_late=True)
def deliver_sales(sale_ids: list[int]) -> int:
    """The same for given sales (the sweep's catch-up)."""
    from .services.deliveries import sales_deliver

    return sales_deliver(sale_ids=sale_ids)


@shared_task(acks_late=True)
def send_sale_delivery(delivery_id: int) -> str | None:
    from .services.deliveries import sale_delivery_attempt

    return sale_delivery_attempt(delivery_id=delivery_id)


@shared_task
def sweep_sale_deliveries() -> dict:
    from .services.deliveries import sale_deliveries_sweep

    return sale_deliveries_sweep()


@shared_task
def notify_low_balance(buyer_id: int) -> int:
    from .emails import low_balance_email_send

    return low_balance_email_send(buyer_id=buyer_id)


@shared_task(acks_late=True)
def recharge_wallet(buyer_id: int, idempotency_key: str) -> str | None:
    from .services.recharge import wallet_auto_recharge

    recharge = wallet_auto_recharge(buyer_id=buyer_id, idempotency_key=idempotency_key)
    return recharge.status if recharge else None


@shared_task
def notify_auto_recharge_failed(recharge_id: int) -> int:
    from .emails import auto_recharge_failed_email_send

    return auto_recharge_failed_email_send(recharge_id=recharge_id)


@shared_task(acks_late=True)
def redistribute_lead(lead_id: int, campaign_id: int) -> str | None:
    """Offer a returned lead to the campaign's other buyers (an approved return with "resell")."""
    from .services.redistribution import lead_resell

    return lead_resell(lead_id=lead_id, campaign_id=campaign_id)


@shared_task
def redistribute_leads() -> dict:
    """Beat: catch up late submissions and offer unsold leads again where campaigns ask for it."""
    from .services.redistribution import leads_redistribute_due

    return leads_redistribute_due()


@shared_task
def enforce_campaign_budgets() -> dict:
    """Beat: campaigns paused for yesterday's daily budget resume after their organization's midnight."""
    from .services.budgets import campaigns_budgets_enforce

    return campaigns_budgets_enforce()
