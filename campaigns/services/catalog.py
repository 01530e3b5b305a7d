"""Setting up the market: categories, campaigns, buyers, subscriptions and suppliers, each change audited."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope

from ..constants import CampaignStatus, PauseReason
from ..models import Buyer, BuyerSubscription, Campaign, Category, Supplier
from .wallets import wallets_ensure


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | date | datetime | time):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


def _save(instance: models.Model, data: dict[str, Any], *, actor, request, m2m: dict[str, Any] | None = None):
    """Apply ``data``, validate the row as the database will (constraints included) and audit what changed."""
    creating = instance.pk is None
    changes = {}
    for name, value in data.items():
        before = None if creating else getattr(instance, name)
        if creating or before != value:
            changes[name] = _plain(value) if creating else [_plain(before), _plain(value)]
        setattr(instance, name, value)
    with organization_scope(instance.organization):
        # Unique checks read through the scoped manager: in scope they see exactly this organization's rows.
        instance.full_clean()
        instance.save()
        for name, related in (m2m or {}).items():
            manager = getattr(instance, name)
            before = sorted(manager.values_list("pk", flat=True)) if not creating else []
            after = sorted(obj.pk for obj in related)
            if before != after:
                manager.set(related)
                changes[name] = after if creating else [before, after]
    if creating or changes:
        audit_record(
            organization=instance.organization,
            action=f"{instance._meta.model_name}.{'created' if creating else 'updated'}",
            actor=actor,
            target=instance,
            changes=changes,
            request=request,
        )
    return instance


@transaction.atomic
def category_save(*, category: Category, data: dict[str, Any], actor=None, request=None) -> Category:
    return _save(category, data, actor=actor, request=request)


BUDGET_FIELDS = ("daily_budget", "total_budget")


@transaction.atomic
def campaign_save(*, campaign: Campaign, data: dict[str, Any], actor=None, request=None) -> Campaign:
    """Create or edit a campaign. A new total ``ad_spend`` is recorded as today's spend (the difference), and a
    change of spend or budget pauses or resumes the campaign for its budget (``services.budgets``)."""
    from .budgets import campaign_budget_enforce, campaign_spend_record

    if {"status", "pause_reason"} & set(data):
        raise ServiceError("Pause and resume the campaign with its own actions.", field="status")
    category = data.get("category")
    if category is not None and category.organization_id != campaign.organization_id:
        raise ServiceError("Pick one of this organization's categories.", field="category")
    data = dict(data)
    new_spend = data.pop("ad_spend", None)
    budgets_before = None
    if campaign.pk is not None:
        # Spend and status move only through their own services: whatever this instance was read with, it saves
        # them as they stand now (the row locked), never an older value over a newer one.
        current = (
            Campaign.objects.unscoped()
            .select_for_update()
            .values("ad_spend", "status", "pause_reason", *BUDGET_FIELDS)
            .get(pk=campaign.pk)
        )
        for name in ("ad_spend", "status", "pause_reason"):
            setattr(campaign, name, current[name])
        budgets_before = tuple(current[name] for name in BUDGET_FIELDS)
    if new_spend is not None and new_spend < 0:
        raise ServiceError("Ad spend cannot be negative.", field="ad_spend")
    campaign = _save(campaign, data, actor=actor, request=request)
    spend_changed = new_spend is not None and new_spend != campaign.ad_spend
    if spend_changed:
        campaign_spend_record(campaign=campaign, amount=new_spend - campaign.ad_spend, actor=actor, request=request)
    if spend_changed or budgets_before != tuple(getattr(campaign, name) for name in BUDGET_FIELDS):
        campaign_budget_enforce(campaign=campaign, actor=actor, request=request)
    with organization_scope(campaign.organization):
        campaign.refresh_from_db(fields=["ad_spend", "status", "pause_reason", "updated_at"])
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, reason: str = PauseReason.MANUAL, actor=None, request=None) -> Campaign:
    """Stop selling a campaign's leads. Billing calls this with ``PauseReason.BILLING`` when money runs out."""
    if reason not in PauseReason.values:
        raise ServiceError("Unknown pause reason.", field="reason")
    campaign = Campaign.objects.unscoped().select_for_update().get(pk=campaign.pk)
    if campaign.status == CampaignStatus.PAUSED and campaign.pause_reason == reason:
        return campaign
    return _save(campaign, {"status": CampaignStatus.PAUSED, "pause_reason": reason}, actor=actor, request=request)


@transaction.atomic
def campaign_resume(
    *, campaign: Campaign, only_if_reason: str | None = None, actor=None, request=None, now: datetime | None = None
) -> Campaign:
    """Sell again. ``only_if_reason`` lets billing resume only what billing paused, never a manual pause. A
    campaign whose budget is spent stays paused until the budget allows it: a person is told why
    (``ServiceError``); an automatic resume leaves it paused for its budget instead."""
    from ..selectors import campaign_budget_usage

    campaign = Campaign.objects.unscoped().select_for_update().get(pk=campaign.pk)
    if campaign.status == CampaignStatus.ACTIVE:
        return campaign
    if only_if_reason is not None and campaign.pause_reason != only_if_reason:
        return campaign
    with organization_scope(campaign.organization):
        usage = campaign_budget_usage(campaign, now=now)
    if usage.reached:
        if only_if_reason is not None:
            # Whoever paused it is done (billing was paid), but the budget is spent: it stays paused, for that.
            return _save(campaign, {"pause_reason": PauseReason.BUDGET}, actor=actor, request=request)
        # A person resuming it would spend past the budget: the budget decides, not the button.
        raise ServiceError(
            "Its budget is spent: raise the budget"
            + (" or wait for tomorrow" if not usage.total_reached else "")
            + " to sell its leads again.",
            field="status",
        )
    return _save(campaign, {"status": CampaignStatus.ACTIVE, "pause_reason": ""}, actor=actor, request=request)


@transaction.atomic
def buyer_save(*, buyer: Buyer, data: dict[str, Any], actor=None, request=None) -> Buyer:
    """Create or edit a buyer; a new buyer gets its (empty) wallet at once."""
    creating = buyer.pk is None
    before = {name: getattr(buyer, name) for name in ("auto_recharge_enabled", "auto_recharge_threshold")}
    buyer = _save(buyer, data, actor=actor, request=request)
    if creating:
        wallets_ensure(buyer_ids=[buyer.pk], organization_id=buyer.organization_id)
    _recharge_if_already_below(buyer, {} if creating else before)
    return buyer


@transaction.atomic
def subscription_save(
    *, subscription: BuyerSubscription, data: dict[str, Any], actor=None, request=None
) -> BuyerSubscription:
    # Not data.get(key, default): the default would load the relation, which a new subscription does not have.
    buyer = data.get("buyer") or subscription.buyer
    campaign = data.get("campaign") or subscription.campaign
    if (
        buyer.organization_id != subscription.organization_id
        or campaign.organization_id != subscription.organization_id
    ):
        raise ServiceError("The buyer and the campaign must be this organization's.", field="buyer")
    return _save(subscription, data, actor=actor, request=request)


@transaction.atomic
def supplier_save(
    *, supplier: Supplier, data: dict[str, Any], campaigns: list[Campaign] | None = None, actor=None, request=None
) -> Supplier:
    if campaigns is not None and any(c.organization_id != supplier.organization_id for c in campaigns):
        raise ServiceError("A supplier can only post to this organization's campaigns.", field="campaigns")
    m2m = {"campaigns": campaigns} if campaigns is not None else None
    return _save(supplier, data, actor=actor, request=request, m2m=m2m)


@transaction.atomic
def catalog_delete(*, instance: models.Model, actor=None, request=None) -> None:
    """Delete a category, campaign, buyer, subscription or supplier. Rows that history depends on (a category
    with campaigns, a buyer with sales) are protected by the database and refused with a clear message."""
    label, pk, text = instance._meta.model_name, instance.pk, str(instance)
    try:
        with transaction.atomic():
            instance.delete()
    except (models.ProtectedError, models.RestrictedError) as error:
        raise ServiceError(
            f"This {instance._meta.verbose_name} is still in use (it has sales, ledger entries or campaigns); "
            "pause it instead."
        ) from error
    audit_record(
        organization=instance.organization,
        action=f"{label}.deleted",
        actor=actor,
        changes={"id": pk, "name": text},
        request=request,
    )


# Buyer settings that act at once --------------------------------------------------------------------------------------


def _recharge_if_already_below(buyer: Buyer, before: dict) -> None:
    """Turning auto-recharge on (or raising its threshold) while the balance is already below it recharges now:
    no debit would cross the threshold to trigger it."""
    from ..models import Wallet
    from .wallets import task_queue_or_log

    if not buyer.auto_recharge_enabled or buyer.auto_recharge_threshold is None:
        return
    unchanged = before.get("auto_recharge_enabled") and before.get("auto_recharge_threshold") == (
        buyer.auto_recharge_threshold
    )
    if unchanged:
        return
    balance = Wallet.objects.unscoped().filter(buyer_id=buyer.pk).values_list("balance", flat=True).first()
    if balance is not None and balance < buyer.auto_recharge_threshold:
        from ..tasks import recharge_wallet

        key = f"auto-recharge:{buyer.pk}:settings:{int(timezone.now().timestamp())}"
        transaction.on_commit(lambda: task_queue_or_log(recharge_wallet, buyer.pk, key))


# Supplier keys --------------------------------------------------------------------------------------------------------


@transaction.atomic
def supplier_api_key_create(*, supplier: Supplier, name: str = "", expires_at=None, actor=None, request=None):
    """An ingest-only key for ``supplier``: it posts leads to the supplier's campaigns and reads its statistics.
    Returns ``(api_key, raw_key)``; show the raw key once."""
    from accounts.constants import ApiKeyScope
    from accounts.services import api_key_create

    from ..models import SupplierApiKey

    if not supplier.is_active:
        raise ServiceError("Turn the supplier back on before giving it a key.", field="supplier")
    api_key, raw_key = api_key_create(
        organization=supplier.organization,
        name=(name or f"Supplier {supplier.name}").strip()[:100],
        scopes=[ApiKeyScope.INGEST],
        expires_at=expires_at,
        created_by=actor,
        request=request,
    )
    SupplierApiKey.objects.unscoped().create(organization=supplier.organization, supplier=supplier, api_key=api_key)
    audit_record(
        organization=supplier.organization,
        action="supplier.key_created",
        actor=actor,
        target=supplier,
        changes={"api_key": api_key.pk, "name": api_key.name},
        request=request,
    )
    return api_key, raw_key
