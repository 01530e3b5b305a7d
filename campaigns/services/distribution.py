"""Selling a lead: the transactional apply around the pure selection core (``campaigns.engine.selection``).

``lead_distribute`` is the entry point the ingest calls once a lead is stored. In one transaction it

1. locks the campaign's ``CampaignRoutingState`` row — the campaign's distribution lock and its rotation — and
   returns the stored outcome if the lead was already distributed there (idempotent under retries and races);
2. checks what needs no lock: paused, delivery schedule (buyer's time zone), states, field filters;
3. locks the wallets of the buyers still in the running, by buyer id (every path locks wallets in that order, so
   overlapping distributions queue instead of deadlocking), and only then counts their caps from ``LeadSale``,
   reads their balances and looks for an earlier sale of this lead or person — facts no concurrent distribution
   can change until this one commits;
4. runs the strategy and writes the outcome, the sales, the ledger debits and the new rotation, all or nothing.

Deliveries to buyers (email, SMS, WhatsApp, webhooks, CRM posts) are not made here: the sales are queued for
delivery after commit (``campaigns.services.deliveries``, keyed on the ``LeadSale`` rows, swept if the queueing is
lost), and so are the wallets' low-balance alerts and auto-recharges. ``lead_redistribute`` runs the same apply
again for a lead that went unsold or was returned: a new round, never a second sale to the same buyer.

Leads tagged ``test-lead`` are refused here, so no path (ingest, redistribution, a command) can sell one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from leadflow.exceptions import ServiceError
from leads.models import Lead
from leads.scoring import rule_matches

from ..constants import TEST_LEAD_TAG, DistributionStatus, ReturnStatus, WalletEntryKind
from ..engine.schedule import schedule_open
from ..engine.selection import Candidate, Reason, StrategyState, rejection_reason, select
from ..models import (
    ZERO,
    BuyerContact,
    BuyerSubscription,
    Campaign,
    CampaignRoutingState,
    LeadDistribution,
    LeadReturn,
    LeadSale,
    WalletEntry,
)
from .wallets import wallet_post, wallets_lock


class TestLeadNotSold(ServiceError):
    __test__ = False  # a name pytest would otherwise collect
    default_code = "test_lead"


class NotRedistributable(ServiceError):
    default_code = "not_redistributable"


@dataclass(frozen=True)
class SoldTo:
    buyer_id: int
    subscription_id: int | None
    price: Decimal
    sale_id: int


@dataclass(frozen=True)
class DistributionOutcome:
    """What the ingest reports: sold to whom at what price, or unsold with each buyer's reason."""

    distribution_id: int
    lead_id: int
    campaign_id: int
    status: str
    sales: tuple[SoldTo, ...]
    reasons: dict[str, str] = field(default_factory=dict)
    # True when the lead had been distributed before and this is the stored outcome, not a new sale.
    replayed: bool = False

    @property
    def sold(self) -> bool:
        return self.status == DistributionStatus.SOLD

    @property
    def revenue(self) -> Decimal:
        return sum((sale.price for sale in self.sales), ZERO)


def contact_keys(lead: Lead) -> list[str]:
    """The person behind a lead, as the keys ``BuyerContact`` guards (intake already normalized both fields)."""
    keys = []
    if lead.email.strip():
        keys.append(f"email:{lead.email.strip().lower()}")
    if lead.phone.strip():
        keys.append(f"phone:{lead.phone.strip()}")
    return keys


def lead_distribute(*, lead: Lead, campaign: Campaign, now: datetime | None = None) -> DistributionOutcome:
    """Route ``lead`` in ``campaign`` and record the outcome; safe to call again for the same lead.

    Called inside an outer transaction (the ingest's), the locks are held until that one commits: keep the rest
    of that transaction short.
    """
    _check_sellable(lead, campaign)
    now = now or timezone.now()
    with transaction.atomic():
        routing = _routing_state_lock(campaign)
        existing = _latest_distribution(lead, campaign)
        if existing is not None:
            return distribution_outcome(existing, replayed=True)
        # Read again under the lock: a pause or a price change committed meanwhile applies to this lead.
        campaign = Campaign.objects.unscoped().get(pk=campaign.pk)
        return _distribute_locked(lead=lead, campaign=campaign, routing=routing, now=now, round_number=1)


def lead_redistribute(*, lead: Lead, campaign: Campaign, now: datetime | None = None) -> DistributionOutcome:
    """Offer a lead again in ``campaign``: a new round of the same apply, for a lead whose last round sold to
    nobody, or that a buyer returned (approved) since. Buyers who already own it are ``already_bought``.

    Raises ``NotRedistributable`` otherwise (sold and kept, never distributed there, or out of rounds).
    """
    _check_sellable(lead, campaign)
    now = now or timezone.now()
    with transaction.atomic():
        routing = _routing_state_lock(campaign)
        latest = _latest_distribution(lead, campaign)
        if latest is None:
            raise NotRedistributable("This lead was never distributed in this campaign.", field="lead")
        campaign = Campaign.objects.unscoped().get(pk=campaign.pk)
        if latest.round >= campaign.redistribute_max_rounds:
            raise NotRedistributable(
                f"This lead has been offered {latest.round} times, the campaign's most.", field="lead"
            )
        returned_since = (
            LeadReturn.objects.unscoped()
            .filter(lead_id=lead.pk, campaign_id=campaign.pk, status=ReturnStatus.APPROVED)
            .filter(decided_at__gte=latest.created_at)
            .exists()
        )
        if latest.status == DistributionStatus.SOLD and not returned_since:
            raise NotRedistributable("This lead was sold and not returned.", field="lead")
        return _distribute_locked(lead=lead, campaign=campaign, routing=routing, now=now, round_number=latest.round + 1)


def _check_sellable(lead: Lead, campaign: Campaign) -> None:
    if lead.organization_id != campaign.organization_id:
        raise ServiceError("The lead and the campaign belong to different organizations.", field="campaign")
    if TEST_LEAD_TAG in (lead.tags or []):
        raise TestLeadNotSold("Test leads are never distributed or billed.", field="lead")


def _latest_distribution(lead: Lead, campaign: Campaign) -> LeadDistribution | None:
    return (
        LeadDistribution.objects.unscoped().filter(lead_id=lead.pk, campaign_id=campaign.pk).order_by("-round").first()
    )


def distribution_outcome(distribution: LeadDistribution, *, replayed: bool = False) -> DistributionOutcome:
    sales = LeadSale.objects.unscoped().filter(distribution=distribution).order_by("buyer_id")
    return DistributionOutcome(
        distribution_id=distribution.pk,
        lead_id=distribution.lead_id,
        campaign_id=distribution.campaign_id,
        status=distribution.status,
        sales=tuple(SoldTo(s.buyer_id, s.subscription_id, s.price, s.pk) for s in sales),
        reasons=dict(distribution.reasons),
        replayed=replayed,
    )


def _routing_state_lock(campaign: Campaign) -> CampaignRoutingState:
    states = CampaignRoutingState.objects.unscoped().select_for_update()
    routing = states.filter(campaign_id=campaign.pk).first()
    if routing is None:
        # The first lead of a campaign: create the row without racing another first lead, then lock it.
        CampaignRoutingState.objects.unscoped().bulk_create(
            [CampaignRoutingState(campaign_id=campaign.pk, organization_id=campaign.organization_id)],
            ignore_conflicts=True,
        )
        routing = states.get(campaign_id=campaign.pk)
    return routing


def _distribute_locked(
    *, lead: Lead, campaign: Campaign, routing: CampaignRoutingState, now: datetime, round_number: int
) -> DistributionOutcome:
    subscriptions = list(
        BuyerSubscription.objects.unscoped().filter(campaign_id=campaign.pk).select_related("buyer").order_by("id")
    )
    # Pass 1, no locks needed: facts that only the lead, the clock and the configuration decide.
    static = {sub.pk: _static_facts(sub, campaign=campaign, lead=lead, now=now) for sub in subscriptions}
    contenders = [sub for sub in subscriptions if rejection_reason(_candidate(sub, campaign, static[sub.pk])) is None]

    # Pass 2, under the wallets' locks: money, caps and earlier sales.
    wallets = wallets_lock(buyer_ids=[sub.buyer_id for sub in contenders], organization_id=campaign.organization_id)
    caps_remaining = _caps_remaining(contenders, campaign=campaign, now=now)
    spend_remaining = _spend_remaining(contenders, now=now)
    bought = _buyers_who_bought(contenders, campaign=campaign, lead=lead)
    candidates = []
    for sub in subscriptions:
        facts = dict(static[sub.pk])
        if sub.buyer_id in wallets:
            facts.update(
                spendable=wallets[sub.buyer_id].balance + sub.buyer.credit_limit,
                caps_remaining=caps_remaining.get(sub.pk),
                spend_remaining=spend_remaining.get(sub.buyer_id),
                already_bought=sub.buyer_id in bought,
            )
        candidates.append(_candidate(sub, campaign, facts))

    state = StrategyState(
        last_subscription_id=routing.last_subscription_id,
        current_weights={int(key): value for key, value in routing.current_weights.items()},
    )
    selection = select(candidates, campaign.distribution_logic, state)

    by_id = {sub.pk: sub for sub in subscriptions}
    distribution = LeadDistribution.objects.unscoped().create(
        organization_id=campaign.organization_id,
        lead=lead,
        campaign=campaign,
        round=round_number,
        status=DistributionStatus.SOLD if selection.chosen else DistributionStatus.UNSOLD,
        strategy=campaign.distribution_logic,
        reasons={str(buyer_id): str(reason) for buyer_id, reason in sorted(selection.rejected.items())},
        revenue=sum((c.price for c in selection.chosen), ZERO),
        created_at=now,
    )
    keys = contact_keys(lead)
    contacts, sold = [], []
    for chosen in sorted(selection.chosen, key=lambda c: c.buyer_id):
        sub = by_id[chosen.subscription_id]
        entry = None
        if chosen.price > ZERO:
            entry = wallet_post(
                wallet=wallets[chosen.buyer_id],
                kind=WalletEntryKind.DEBIT,
                amount=-chosen.price,
                credit_limit=sub.buyer.credit_limit,
                lead=lead,
                note=f"Lead {lead.pk} in {campaign.name}",
                buyer=sub.buyer,
                created_at=now,
            )
        sale = LeadSale.objects.unscoped().create(
            organization_id=campaign.organization_id,
            distribution=distribution,
            lead=lead,
            campaign=campaign,
            buyer_id=chosen.buyer_id,
            subscription=sub,
            price=chosen.price,
            wallet_entry=entry,
            created_at=now,
        )
        sold.append(SoldTo(sale.buyer_id, sale.subscription_id, sale.price, sale.pk))
        contacts += [
            BuyerContact(
                organization_id=campaign.organization_id,
                buyer_id=chosen.buyer_id,
                campaign=campaign,
                contact_key=key,
                sale=sale,
            )
            for key in keys
        ]
    BuyerContact.objects.unscoped().bulk_create(contacts)

    if selection.state != state:
        live = set(by_id)
        routing.last_subscription_id = selection.state.last_subscription_id
        # Forget the weights of deleted subscriptions, so the row does not grow forever.
        routing.current_weights = {
            str(key): value for key, value in sorted(selection.state.current_weights.items()) if key in live
        }
        routing.save(update_fields=["last_subscription_id", "current_weights", "updated_at"])
    _after_commit(campaign, [sale.sale_id for sale in sold], status=distribution.status)
    return DistributionOutcome(
        distribution_id=distribution.pk,
        lead_id=lead.pk,
        campaign_id=campaign.pk,
        status=distribution.status,
        sales=tuple(sold),
        reasons=dict(distribution.reasons),
    )


def _static_facts(sub: BuyerSubscription, *, campaign: Campaign, lead: Lead, now: datetime) -> dict:
    local_now = now.astimezone(ZoneInfo(sub.buyer.timezone))
    wanted_states = {state.strip().upper() for state in sub.states}
    return {
        "paused": not (campaign.is_active and sub.is_active and sub.buyer.is_active),
        "schedule_open": schedule_open(
            local_now, days=sub.schedule_days, start=sub.schedule_start, end=sub.schedule_end
        ),
        "state_wanted": (
            not campaign.buyers_pick_states or not wanted_states or lead.state.strip().upper() in wanted_states
        ),
        "filters_passed": all(rule_matches(_rule(rule), lead) for rule in sub.field_filters),
        # Until the wallet is locked, money is not what rejects anyone.
        "spendable": Decimal("Infinity"),
    }


def _rule(rule: dict) -> SimpleNamespace:
    return SimpleNamespace(field=rule["field"], operator=rule["operator"], value=str(rule.get("value", "")))


def _candidate(sub: BuyerSubscription, campaign: Campaign, facts: dict) -> Candidate:
    price = sub.price_override if sub.price_override is not None else campaign.price_per_lead
    return Candidate(
        subscription_id=sub.pk,
        buyer_id=sub.buyer_id,
        price=price,
        weight=sub.weight,
        priority=sub.priority,
        **facts,
    )


CAP_WINDOWS = ("hourly_cap", "daily_cap", "weekly_cap", "monthly_cap")


def cap_window_starts(now: datetime, zone: ZoneInfo) -> dict[str, datetime]:
    """The start of the current calendar hour, day, week (Monday) and month in ``zone``."""
    local = now.astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "hourly_cap": local.replace(minute=0, second=0, microsecond=0),
        "daily_cap": day,
        "weekly_cap": day - timedelta(days=day.weekday()),
        "monthly_cap": day.replace(day=1),
    }


def _caps_remaining(subscriptions: list[BuyerSubscription], *, campaign: Campaign, now: datetime) -> dict[int, int]:
    """Subscription id → sales left before its tightest cap (uncapped subscriptions are absent).

    Sales are counted per calendar window of the buyer's time zone; buyers sharing a zone share one query.
    """
    capped = [sub for sub in subscriptions if any(getattr(sub, name) is not None for name in CAP_WINDOWS)]
    by_zone: dict[str, list[BuyerSubscription]] = defaultdict(list)
    for sub in capped:
        by_zone[sub.buyer.timezone].append(sub)
    remaining = {}
    for zone_name, subs in by_zone.items():
        starts = cap_window_starts(now, ZoneInfo(zone_name))
        counts = {
            row["buyer_id"]: row
            for row in LeadSale.objects.unscoped()
            .filter(
                campaign_id=campaign.pk,
                buyer_id__in=[sub.buyer_id for sub in subs],
                created_at__gte=min(starts.values()),
            )
            .values("buyer_id")
            .annotate(**{name: Count("id", filter=Q(created_at__gte=start)) for name, start in starts.items()})
        }
        for sub in subs:
            row = counts.get(sub.buyer_id, {})
            remaining[sub.pk] = min(
                getattr(sub, name) - row.get(name, 0) for name in CAP_WINDOWS if getattr(sub, name) is not None
            )
    return remaining


def _spend_remaining(subscriptions: list[BuyerSubscription], *, now: datetime) -> dict[int, Decimal]:
    """Buyer id → what its tightest weekly or monthly spending limit still allows (buyers without limits absent).

    Spending is the buyer's sales debits in the calendar week (Monday) and month of its time zone, in every
    campaign, net of refunds for returned leads in the same window. Read under the wallets' locks: every debit
    takes that lock, so no concurrent sale can change it meanwhile.
    """
    limited = [
        sub.buyer
        for sub in subscriptions
        if sub.buyer.weekly_spend_limit is not None or sub.buyer.monthly_spend_limit is not None
    ]
    by_zone: dict[str, list] = defaultdict(list)
    for buyer in limited:
        by_zone[buyer.timezone].append(buyer)
    remaining = {}
    for zone_name, buyers in by_zone.items():
        starts = cap_window_starts(now, ZoneInfo(zone_name))
        week, month = starts["weekly_cap"], starts["monthly_cap"]
        sums = {
            row["buyer_id"]: row
            for row in WalletEntry.objects.unscoped()
            .filter(
                buyer_id__in=[buyer.pk for buyer in buyers],
                kind__in=[WalletEntryKind.DEBIT, WalletEntryKind.REFUND],
                lead__isnull=False,
                created_at__gte=min(week, month),
            )
            .values("buyer_id")
            .annotate(
                week=Sum("amount", filter=Q(created_at__gte=week)), month=Sum("amount", filter=Q(created_at__gte=month))
            )
        }
        for buyer in buyers:
            row = sums.get(buyer.pk, {})
            room = [
                limit + (row.get(window) or ZERO)  # the sums are negative: debits minus refunds
                for limit, window in ((buyer.weekly_spend_limit, "week"), (buyer.monthly_spend_limit, "month"))
                if limit is not None
            ]
            remaining[buyer.pk] = min(room)
    return remaining


def _after_commit(campaign: Campaign, sale_ids: list[int], *, status: str) -> None:
    """Queue the sales' deliveries and tell open campaign pages, once the sale has committed."""
    from .deliveries import sales_deliver_on_commit
    from .live import campaign_figures_changed

    if sale_ids:
        sales_deliver_on_commit(sale_ids)
    campaign_figures_changed(campaign, status=status)


def _buyers_who_bought(subscriptions: list[BuyerSubscription], *, campaign: Campaign, lead: Lead) -> set[int]:
    """Buyers who already own this lead (in any campaign) or this person (in this campaign)."""
    buyer_ids = [sub.buyer_id for sub in subscriptions]
    if not buyer_ids:
        return set()
    owners = set(
        LeadSale.objects.unscoped().filter(lead_id=lead.pk, buyer_id__in=buyer_ids).values_list("buyer_id", flat=True)
    )
    keys = contact_keys(lead)
    if keys:
        owners |= set(
            BuyerContact.objects.unscoped()
            .filter(campaign_id=campaign.pk, buyer_id__in=buyer_ids, contact_key__in=keys)
            .values_list("buyer_id", flat=True)
        )
    return owners


__all__ = [
    "DistributionOutcome",
    "NotRedistributable",
    "Reason",
    "SoldTo",
    "TestLeadNotSold",
    "contact_keys",
    "distribution_outcome",
    "lead_distribute",
    "lead_redistribute",
]
