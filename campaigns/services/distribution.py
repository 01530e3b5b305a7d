"""Selling a lead: the transactional apply around the pure selection core (``campaigns.engine.selection``).

``lead_distribute`` is the entry point the ingest calls once a lead is stored. In one transaction it

1. locks the campaign's ``CampaignRoutingState`` row — the campaign's distribution lock and its rotation — and
   returns the stored outcome if the lead was already distributed there (idempotent under retries and races);
2. checks what needs no lock: paused, delivery schedule (buyer's time zone), states, field filters (the
   subscriptions themselves are read just before the lock, to hold it for less time);
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

from django.db import connection, transaction
from django.db.models import Count, Q, Subquery, Sum
from django.utils import timezone
from psycopg.types.json import Jsonb

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
    Wallet,
    WalletEntry,
)
from .wallets import InsufficientFunds, threshold_effects, threshold_effects_on_commit, wallet_post, wallets_lock


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
    # The subscriptions are read before the campaign's lock is taken, so the lock is held for less time; what an
    # invariant rests on (the campaign's status and price, caps, money, earlier sales) is read under the locks.
    subscriptions = _subscriptions(campaign)
    static = _static_facts_all(subscriptions, campaign=campaign, lead=lead, now=now)
    with transaction.atomic():
        routing = _routing_state_lock(campaign)
        fresh = _campaign_under_lock(campaign, lead=lead)
        if fresh.latest_distribution_id is not None:
            existing = LeadDistribution.objects.unscoped().get(pk=fresh.latest_distribution_id)
            return distribution_outcome(existing, replayed=True)
        if _static_inputs(fresh) != _static_inputs(campaign):  # paused or re-configured meanwhile: decide again
            static = _static_facts_all(subscriptions, campaign=fresh, lead=lead, now=now)
        return _distribute_locked(
            lead=lead,
            campaign=fresh,
            routing=routing,
            now=now,
            round_number=1,
            subscriptions=subscriptions,
            static=static,
        )


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
        subscriptions = _subscriptions(campaign)
        return _distribute_locked(
            lead=lead,
            campaign=campaign,
            routing=routing,
            now=now,
            round_number=latest.round + 1,
            subscriptions=subscriptions,
            static=_static_facts_all(subscriptions, campaign=campaign, lead=lead, now=now),
        )


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


def _campaign_under_lock(campaign: Campaign, *, lead: Lead) -> Campaign:
    """The campaign read again once its lock is held (a pause or a price change committed meanwhile applies to this
    lead), with the lead's latest outcome there as ``latest_distribution_id``, in one statement.

    It must be a statement of its own, after the lock: a ``SELECT … FOR UPDATE`` that waited for the lock re-reads
    the locked row but answers its subqueries from the snapshot taken before the wait, which cannot see the outcome
    the previous holder just committed.
    """
    latest = LeadDistribution.objects.unscoped().filter(lead_id=lead.pk, campaign_id=campaign.pk).order_by("-round")
    return (
        Campaign.objects.unscoped()
        .annotate(latest_distribution_id=Subquery(latest.values("id")[:1]))
        .get(pk=campaign.pk)
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


# What a distribution reads of each subscription and its buyer: only these columns (a campaign with fifty buyers
# otherwise spends more time building timestamps it never looks at than deciding who gets the lead).
SUBSCRIPTION_COLUMNS = (
    "id",
    "buyer_id",
    "campaign_id",
    "is_active",
    "hourly_cap",
    "daily_cap",
    "weekly_cap",
    "monthly_cap",
    "states",
    "field_filters",
    "schedule_days",
    "schedule_start",
    "schedule_end",
    "priority",
    "weight",
    "price_override",
    "buyer__id",
    "buyer__organization_id",
    "buyer__name",
    "buyer__status",
    "buyer__timezone",
    "buyer__credit_limit",
    "buyer__weekly_spend_limit",
    "buyer__monthly_spend_limit",
    "buyer__low_balance_threshold",
    "buyer__auto_recharge_enabled",
    "buyer__auto_recharge_threshold",
)


def _subscriptions(campaign: Campaign) -> list[BuyerSubscription]:
    return list(
        BuyerSubscription.objects.unscoped()
        .filter(campaign_id=campaign.pk)
        .select_related("buyer")
        .only(*SUBSCRIPTION_COLUMNS)
        .order_by("id")
    )


def _distribute_locked(
    *,
    lead: Lead,
    campaign: Campaign,
    routing: CampaignRoutingState,
    now: datetime,
    round_number: int,
    subscriptions: list[BuyerSubscription],
    static: dict[int, dict],
) -> DistributionOutcome:
    # Pass 1 (computed before the lock): facts that only the lead, the clock and the configuration decide.
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
    reasons = {str(buyer_id): str(reason) for buyer_id, reason in sorted(selection.rejected.items())}
    status = DistributionStatus.SOLD if selection.chosen else DistributionStatus.UNSOLD
    routing_changed = selection.state != state
    if routing_changed:
        live = set(by_id)
        routing.last_subscription_id = selection.state.last_subscription_id
        # Forget the weights of deleted subscriptions, so the row does not grow forever.
        routing.current_weights = {
            str(key): value for key, value in sorted(selection.state.current_weights.items()) if key in live
        }
    written = {
        "lead": lead,
        "campaign": campaign,
        "routing": routing,
        "now": now,
        "round_number": round_number,
        "reasons": reasons,
    }
    if len(selection.chosen) == 1 and selection.chosen[0].price > ZERO:
        # The common case, one paid sale: everything in one statement, so the campaign's lock is held for less.
        [chosen] = selection.chosen
        sub = by_id[chosen.subscription_id]
        distribution_id, sold = _write_one_sale(
            **written, chosen=chosen, sub=sub, wallet=wallets[chosen.buyer_id], routing_changed=routing_changed
        )
    else:
        distribution_id, sold = _write_outcome(
            **written, status=status, selection=selection, by_id=by_id, wallets=wallets, routing_changed=routing_changed
        )
    _after_commit(campaign, [sale.sale_id for sale in sold], status=status)
    return DistributionOutcome(
        distribution_id=distribution_id,
        lead_id=lead.pk,
        campaign_id=campaign.pk,
        status=status,
        sales=tuple(sold),
        reasons=reasons,
    )


def _write_outcome(
    *, lead, campaign, routing, now, round_number, reasons, status, selection, by_id, wallets, routing_changed
) -> tuple[int, list[SoldTo]]:
    """Write any outcome (none sold, several sold, free leads) through the models."""
    distribution = LeadDistribution.objects.unscoped().create(
        organization_id=campaign.organization_id,
        lead=lead,
        campaign=campaign,
        round=round_number,
        status=status,
        strategy=campaign.distribution_logic,
        reasons=reasons,
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
                note=_debit_note(lead, campaign),
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
    if routing_changed:
        routing.save(update_fields=["last_subscription_id", "current_weights", "updated_at"])
    return distribution.pk, sold


def _debit_note(lead: Lead, campaign: Campaign) -> str:
    return f"Lead {lead.pk} in {campaign.name}"[:255]


# One paid sale, written in one statement: the outcome, the ledger debit, the wallet's new balance, the sale, the
# person's contact keys and the rotation. The same rows ``_write_outcome`` writes through the models (the tests run
# both paths), at one round trip instead of six, inside the campaign's lock. Money rules are decided before it runs
# (the wallet is locked and its balance known); the table constraints are the backstop.
_ONE_SALE_SQL = f"""
WITH distribution AS (
    INSERT INTO {LeadDistribution._meta.db_table}
        (organization_id, lead_id, campaign_id, round, status, strategy, reasons, revenue, created_at)
    VALUES (%(organization)s, %(lead)s, %(campaign)s, %(round)s, %(sold)s, %(strategy)s, %(reasons)s, %(price)s,
            %(now)s)
    RETURNING id
), entry AS (
    INSERT INTO {WalletEntry._meta.db_table}
        (organization_id, buyer_id, kind, amount, balance_after, lead_id, note, external_reference, created_at)
    VALUES (%(organization)s, %(buyer)s, %(debit)s, %(amount)s, %(balance_after)s, %(lead)s, %(note)s, '', %(now)s)
    RETURNING id
), wallet AS (
    UPDATE {Wallet._meta.db_table}
       SET balance = %(balance_after)s, low_balance_alerted = %(alerted)s, updated_at = %(written_at)s
     WHERE id = %(wallet)s
), sale AS (
    INSERT INTO {LeadSale._meta.db_table}
        (organization_id, distribution_id, lead_id, campaign_id, buyer_id, subscription_id, price, wallet_entry_id,
         created_at)
    SELECT %(organization)s, distribution.id, %(lead)s, %(campaign)s, %(buyer)s, %(subscription)s, %(price)s,
           entry.id, %(now)s
      FROM distribution, entry
    RETURNING id
), contacts AS (
    INSERT INTO {BuyerContact._meta.db_table} (organization_id, buyer_id, campaign_id, contact_key, sale_id)
    SELECT %(organization)s, %(buyer)s, %(campaign)s, key, sale.id FROM sale, unnest(%(keys)s::varchar[]) AS key
), routing AS (
    UPDATE {CampaignRoutingState._meta.db_table}
       SET last_subscription_id = %(last_subscription)s, current_weights = %(weights)s, updated_at = %(written_at)s
     WHERE id = %(routing)s AND %(routing_changed)s
)
SELECT distribution.id, entry.id, sale.id FROM distribution, entry, sale
"""  # noqa: S608 - the table names come from the models; every value is bound


def _write_one_sale(
    *, lead, campaign, routing, now, round_number, reasons, chosen, sub, wallet, routing_changed
) -> tuple[int, list[SoldTo]]:
    buyer = sub.buyer
    before, after = wallet.balance, wallet.balance - chosen.price
    if after < -buyer.credit_limit:  # the selection checked it; this is the guard wallet_post keeps too
        raise InsufficientFunds(f"The wallet holds {before}; it cannot pay {chosen.price}.", field="amount")
    alerted, alert, recharge = threshold_effects(
        alerted=wallet.low_balance_alerted, buyer=buyer, before=before, after=after
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _ONE_SALE_SQL,
            {
                "organization": campaign.organization_id,
                "lead": lead.pk,
                "campaign": campaign.pk,
                "round": round_number,
                "sold": DistributionStatus.SOLD.value,
                "strategy": campaign.distribution_logic,
                "reasons": Jsonb(reasons),
                "price": chosen.price,
                "now": now,
                "buyer": chosen.buyer_id,
                "debit": WalletEntryKind.DEBIT.value,
                "amount": -chosen.price,
                "balance_after": after,
                "note": _debit_note(lead, campaign),
                "alerted": alerted,
                "written_at": timezone.now(),
                "wallet": wallet.pk,
                "subscription": sub.pk,
                "keys": contact_keys(lead),
                "last_subscription": routing.last_subscription_id,
                "weights": Jsonb(routing.current_weights),
                "routing": routing.pk,
                "routing_changed": routing_changed,
            },
        )
        distribution_id, entry_id, sale_id = cursor.fetchone()
    wallet.balance, wallet.low_balance_alerted = after, alerted
    threshold_effects_on_commit(buyer=buyer, alert=alert, recharge=recharge, entry_id=entry_id)
    return distribution_id, [SoldTo(chosen.buyer_id, sub.pk, chosen.price, sale_id)]


def _static_inputs(campaign: Campaign) -> tuple:
    """What of the campaign the static facts depend on."""
    return (campaign.status, campaign.buyers_pick_states)


def _static_facts_all(subscriptions, *, campaign: Campaign, lead: Lead, now: datetime) -> dict[int, dict]:
    return {sub.pk: _static_facts(sub, campaign=campaign, lead=lead, now=now) for sub in subscriptions}


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
        sales_deliver_on_commit(campaign.organization_id)
    campaign_figures_changed(campaign, status=status)


def _buyers_who_bought(subscriptions: list[BuyerSubscription], *, campaign: Campaign, lead: Lead) -> set[int]:
    """Buyers who already own this lead (in any campaign) or this person (in this campaign)."""
    buyer_ids = [sub.buyer_id for sub in subscriptions]
    if not buyer_ids:
        return set()
    # Who owns the lead or the person at all, then only the contenders: short queries on the (lead, buyer) and
    # (campaign, contact key) indexes, rather than a list of every contender's id, which costs more to build and
    # send than to answer.
    owners = LeadSale.objects.unscoped().filter(lead_id=lead.pk).values_list("buyer_id")
    keys = contact_keys(lead)
    if keys:
        people = BuyerContact.objects.unscoped().filter(campaign_id=campaign.pk, contact_key__in=keys)
        owners = owners.union(people.values_list("buyer_id"))  # one round trip for both
    contenders = set(buyer_ids)
    return {buyer_id for (buyer_id,) in owners if buyer_id in contenders}


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
