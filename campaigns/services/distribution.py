"""Selling a lead: the transactional apply around the pure selection core (``campaigns.engine.selection``).

``lead_distribute`` is the entry point the ingest calls once a lead is stored. In one transaction it

1. locks the campaign's ``CampaignRoutingState`` row — the campaign's distribution lock and its rotation — and
   returns the stored outcome if the lead was already distributed there (idempotent under retries and races);
2. checks what needs no lock: paused, delivery schedule (buyer's time zone), states, field filters. The
   subscriptions and their buyers come from the process's memory (``campaign_members``), checked against the
   campaign's ``subscriptions_version`` read under the lock, with who already bought this lead or person;
3. gathers the facts only locks make true — balance, caps, spending limits, a sale of this lead elsewhere — for the
   buyers the strategy reaches: round robin and waterfall take their candidates one at a time in their own order
   and stop at the first eligible one, so usually one wallet is locked and one subscription's caps counted (the
   others are ``not_chosen``); weighted and broadcast need every buyer's answer and lock all contenders' wallets
   in one statement. Wallets are only waited for in ascending buyer id, so overlapping distributions queue
   instead of deadlocking (``_apply_atomically``);
4. runs the strategy and writes the outcome, the sales, the ledger debits and the new rotation, all or nothing.

Deliveries to buyers (email, SMS, WhatsApp, webhooks, CRM posts) are not made here: the sales are queued for
delivery after commit (``campaigns.services.deliveries``, keyed on the ``LeadSale`` rows, swept if the queueing is
lost), and so are the wallets' low-balance alerts and auto-recharges. ``lead_redistribute`` runs the same apply
again for a lead that went unsold or was returned: a new round, never a second sale to the same buyer.

Leads tagged ``test-lead`` are refused here, so no path (ingest, redistribution, a command) can sell one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from leadflow.caching import ProcessCache
from leadflow.exceptions import ServiceError
from leadflow.sql import GENERIC_PLANS, PreparedStatement, fetch_prepared, prepared_statements_lost
from leads.models import Lead
from leads.scoring import rule_matches

from ..constants import TEST_LEAD_TAG, DistributionStatus, ReturnStatus, WalletEntryKind
from ..engine.schedule import schedule_open
from ..engine.selection import (
    LAZY_STRATEGIES,
    Candidate,
    Reason,
    Strategy,
    StrategyState,
    rejection_reason,
    select,
    select_lazily,
)
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
    # The subscriptions come from this process's memory and the facts they alone decide are worked out before the
    # campaign's lock is taken, so the lock is held for less time; under the lock the campaign is read again with
    # its subscriptions' version, and anything stale is decided again.
    members = campaign_members(campaign.pk)
    static = _static_facts_all(members, campaign=campaign, lead=lead, now=now)

    def apply(*, lazy: bool) -> DistributionOutcome:
        routing, fresh = _lock_and_read(campaign, lead=lead)
        if fresh.latest_distribution_id is not None:
            existing = LeadDistribution.objects.unscoped().get(pk=fresh.latest_distribution_id)
            return distribution_outcome(existing, replayed=True)
        current, facts = members, static
        if fresh.subscriptions_version != members.version:
            current = campaign_members(campaign.pk, version=fresh.subscriptions_version)
            facts = _static_facts_all(current, campaign=fresh, lead=lead, now=now)
        elif _static_inputs(fresh) != _static_inputs(campaign):  # paused or re-configured meanwhile: decide again
            facts = _static_facts_all(current, campaign=fresh, lead=lead, now=now)
        return _distribute_locked(
            lead=lead,
            campaign=fresh,
            routing=routing,
            now=now,
            round_number=1,
            members=current,
            static=facts,
            lazy=lazy,
        )

    return _apply_atomically(apply)


def lead_redistribute(*, lead: Lead, campaign: Campaign, now: datetime | None = None) -> DistributionOutcome:
    """Offer a lead again in ``campaign``: a new round of the same apply, for a lead whose last round sold to
    nobody, or that a buyer returned (approved) since. Buyers who already own it are ``already_bought``.

    Raises ``NotRedistributable`` otherwise (sold and kept, never distributed there, or out of rounds).
    """
    _check_sellable(lead, campaign)
    now = now or timezone.now()

    def apply(*, lazy: bool) -> DistributionOutcome:
        routing, fresh = _lock_and_read(campaign, lead=lead)
        latest = _latest_distribution(lead, campaign)
        if latest is None:
            raise NotRedistributable("This lead was never distributed in this campaign.", field="lead")
        if latest.round >= fresh.redistribute_max_rounds:
            raise NotRedistributable(
                f"This lead has been offered {latest.round} times, the campaign's most.", field="lead"
            )
        returned_since = (
            LeadReturn.objects.unscoped()
            .filter(lead_id=lead.pk, campaign_id=fresh.pk, status=ReturnStatus.APPROVED)
            .filter(decided_at__gte=latest.created_at)
            .exists()
        )
        if latest.status == DistributionStatus.SOLD and not returned_since:
            raise NotRedistributable("This lead was sold and not returned.", field="lead")
        members = campaign_members(fresh.pk, version=fresh.subscriptions_version)
        return _distribute_locked(
            lead=lead,
            campaign=fresh,
            routing=routing,
            now=now,
            round_number=latest.round + 1,
            members=members,
            static=_static_facts_all(members, campaign=fresh, lead=lead, now=now),
            lazy=lazy,
        )

    return _apply_atomically(apply)


class _WalletOutOfOrder(Exception):
    """A lazy apply needed a wallet below one it holds, and that wallet was locked by someone else."""


def _apply_atomically(apply) -> DistributionOutcome:
    """Run the apply in one transaction, lazily (only the wallets the strategy reaches are locked) — and, in the rare
    case that would mean waiting for a wallet out of buyer-id order, again from the start examining everyone.

    Wallets are only ever waited for in ascending buyer id, whatever is already held, so two distributions
    locking overlapping buyers queue instead of deadlocking: a lazy apply that reaches a lower id than one it holds
    takes it only if it is free (``SKIP LOCKED``); if it is not, everything is rolled back (the locks with it) and
    the eager apply locks every contender at once, in order. The eager apply also runs when the buyer a lazy one
    chose turns out to have bought the lead in another campaign meanwhile (``_SoldMeanwhile``): it reads every
    contender's earlier sales once their wallets are held.

    Run again, once, when the connection had lost the prepared statements (a pooler, DISCARD ALL; see
    ``leadflow.sql``): nothing was written, and they are prepared again.
    """
    try:
        return _apply_lazily_then_eagerly(apply)
    except DatabaseError as error:
        if not prepared_statements_lost(error):
            raise
    return _apply_lazily_then_eagerly(apply)


def _apply_lazily_then_eagerly(apply) -> DistributionOutcome:
    try:
        with transaction.atomic():
            return apply(lazy=True)
    except (_WalletOutOfOrder, _SoldMeanwhile):
        with transaction.atomic():
            return apply(lazy=False)


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


def _lock_and_read(campaign: Campaign, *, lead: Lead) -> tuple[CampaignRoutingState, Campaign]:
    """Take the campaign's distribution lock (its ``CampaignRoutingState`` row, made on its first lead) and read the
    campaign again, in one round trip of two prepared statements.

    The campaign read again applies a pause or a price change committed meanwhile to this lead, and carries

    * ``latest_distribution_id``: the lead's latest outcome there;
    * ``person_owner_ids``: the buyers who bought this person in this campaign (``BuyerContact``);
    * ``lead_owner_ids``: the buyers who bought this lead in any campaign;
    * its ``subscriptions_version``, to check the subscriptions this process remembers.

    Sales in a campaign are only made under its lock, so the first three are exact for this campaign; a sale of
    the same lead in another campaign is looked for again once the buyer's wallet is held (by ``_post_lock_facts``,
    or by the sale's own statement).

    The read must be a statement of its own, after the lock's: a ``SELECT … FOR UPDATE`` that waited for the lock
    re-reads the locked row but answers its subqueries from the snapshot taken before the wait, which cannot see
    the outcome the previous holder just committed. The second statement takes its snapshot once the first holds
    the lock.
    """
    # The person's keys as two values (NULL when missing), not an array: a generic plan cannot see how long an array
    # parameter is and may then look contacts up by campaign alone.
    first_key, second_key = [*contact_keys(lead), None, None][:2]
    params = {"campaign": campaign.pk, "lead": lead.pk, "first_key": first_key, "second_key": second_key}
    statements = [_ROUTING_LOCK, _CAMPAIGN_UNDER_LOCK]
    # Every statement of the distribution looks rows up by key (see GENERIC_PLANS).
    routing_rows, campaign_rows = fetch_prepared(statements, params, preamble=(GENERIC_PLANS,))
    if not routing_rows:
        # The first lead of a campaign: create the row without racing another first lead, then lock it.
        CampaignRoutingState.objects.unscoped().bulk_create(
            [CampaignRoutingState(campaign_id=campaign.pk, organization_id=campaign.organization_id)],
            ignore_conflicts=True,
        )
        routing_rows, campaign_rows = fetch_prepared(statements, params)
    if not campaign_rows:
        raise Campaign.DoesNotExist(f"Campaign {campaign.pk} no longer exists.")
    [(routing_id, last_subscription_id, weights)] = routing_rows
    routing = CampaignRoutingState.from_db(
        connection.alias,
        ["id", "organization_id", "campaign_id", "last_subscription_id", "current_weights"],
        [routing_id, campaign.organization_id, campaign.pk, last_subscription_id, json.loads(weights)],
    )
    [row] = campaign_rows
    fresh = Campaign.from_db(connection.alias, _CAMPAIGN_FIELDS, row[: len(_CAMPAIGN_FIELDS)])
    fresh.latest_distribution_id, fresh.person_owner_ids, fresh.lead_owner_ids = row[len(_CAMPAIGN_FIELDS) :]
    return routing, fresh


_ROUTING_LOCK = PreparedStatement(
    f"""SELECT id, last_subscription_id, current_weights::text FROM {CampaignRoutingState._meta.db_table}
         WHERE campaign_id = %(campaign)s FOR UPDATE""",  # noqa: S608 - the table name comes from the model
    {"campaign": "bigint"},
)
_CAMPAIGN_FIELDS = [field.attname for field in Campaign._meta.concrete_fields]
_CAMPAIGN_UNDER_LOCK = PreparedStatement(
    f"""
SELECT {", ".join(f'campaign."{field.column}"' for field in Campaign._meta.concrete_fields)},
       (SELECT id FROM {LeadDistribution._meta.db_table}
         WHERE lead_id = %(lead)s AND campaign_id = campaign.id ORDER BY round DESC LIMIT 1),
       ARRAY(SELECT buyer_id FROM {BuyerContact._meta.db_table}
              WHERE campaign_id = campaign.id AND contact_key IN (%(first_key)s, %(second_key)s)),
       ARRAY(SELECT buyer_id FROM {LeadSale._meta.db_table} WHERE lead_id = %(lead)s)
  FROM {Campaign._meta.db_table} campaign
 WHERE campaign.id = %(campaign)s
""",  # noqa: S608 - the table and column names come from the models; every value is bound
    {"campaign": "bigint", "lead": "bigint", "first_key": "varchar", "second_key": "varchar"},
)


# The campaign's subscriptions, in memory ----------------------------------------------------------------------------

# What a distribution reads of each subscription and its buyer: only these columns (a campaign with fifty buyers
# otherwise spends more time building timestamps it never looks at than deciding who gets the lead). Migration 0004's
# trigger raises the campaign's ``subscriptions_version`` when any of the buyer's columns here changes.
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

CAP_WINDOWS = ("hourly_cap", "daily_cap", "weekly_cap", "monthly_cap")


@dataclass(frozen=True)
class Member:
    """One subscription with what deciding about it needs, worked out once when the campaign is loaded. The
    subscription and its buyer are shared by the process's threads: read them, never change them."""

    subscription: BuyerSubscription
    zone: ZoneInfo
    wanted_states: frozenset[str]
    rules: tuple[SimpleNamespace, ...]
    capped: bool
    spend_limited: bool
    scheduled: bool  # has delivery days or hours

    @property
    def varies(self) -> bool:
        """Whether the lead or the clock decide something about it (a delivery schedule, states, field filters)."""
        return self.scheduled or bool(self.wanted_states) or bool(self.rules)

    @classmethod
    def of(cls, sub: BuyerSubscription) -> Member:
        buyer = sub.buyer
        return cls(
            subscription=sub,
            zone=ZoneInfo(buyer.timezone),
            wanted_states=frozenset(state.strip().upper() for state in sub.states),
            rules=tuple(_rule(rule) for rule in sub.field_filters),
            capped=any(getattr(sub, name) is not None for name in CAP_WINDOWS),
            spend_limited=buyer.weekly_spend_limit is not None or buyer.monthly_spend_limit is not None,
            scheduled=bool(sub.schedule_days) or sub.schedule_start is not None,
        )


@dataclass(frozen=True)
class CampaignMembers:
    version: int  # the campaign's subscriptions_version read before the subscriptions were
    members: tuple[Member, ...]
    # (price per lead, campaign active) → every member as a candidate; see ``candidates``.
    _candidates: dict = field(default_factory=dict, compare=False, repr=False)

    def __iter__(self):
        return iter(self.members)

    @cached_property
    def by_id(self) -> dict[int, Member]:
        return {member.subscription.pk: member for member in self.members}

    @cached_property
    def positions(self) -> dict[int, int]:
        return {member.subscription.pk: index for index, member in enumerate(self.members)}

    @cached_property
    def varying(self) -> tuple[Member, ...]:
        return tuple(member for member in self.members if member.varies)

    def candidates(self, campaign: Campaign) -> tuple[Candidate, ...]:
        """Every member as a candidate, in subscription order, with what the configuration decides alone: its price,
        weight and priority, and whether it is paused. What the lead and the clock decide is added per lead (for
        the members that vary), and what needs the locks once they are held. Kept per price and campaign status,
        so a fifty-buyer campaign does not build fifty candidates for every lead."""
        key = (campaign.price_per_lead, campaign.is_active)
        made = self._candidates.get(key)
        if made is None:
            if len(self._candidates) >= 8:  # a price changed many times while the entry was kept
                self._candidates.clear()
            made = self._candidates[key] = tuple(_candidate(member, campaign) for member in self.members)
        return made


# Read on every distribution and rarely changed. The version check under the campaign's lock makes a stale entry
# impossible to use, so a campaign in use is never loaded again on a timer (that cost one request in a hundred a
# fifty-buyer reload); the time limit only drops campaigns nobody has sold in for a while.
MEMBERS_CACHE_SECONDS = 600
_members: ProcessCache[CampaignMembers] = ProcessCache(seconds=MEMBERS_CACHE_SECONDS, while_read=True)


def campaign_members(campaign_id: int, *, version: int | None = None) -> CampaignMembers:
    """The campaign's subscriptions and buyers as this process remembers them; with ``version`` (read under the
    campaign's lock), reloaded unless they were loaded at that version."""
    cached = _members.get(campaign_id, lambda: _members_load(campaign_id))
    if version is not None and cached.version != version:
        _members.forget(campaign_id)
        cached = _members.get(campaign_id, lambda: _members_load(campaign_id))
    return cached


def campaign_members_forget() -> None:
    """Forget every campaign's subscriptions (tests; nothing else needs it: the version tells when to reload)."""
    _members.forget()


def _members_load(campaign_id: int) -> CampaignMembers:
    # The version first: a change committed between the two reads leaves newer subscriptions under an older
    # version, which only means one reload too many; the other way round could keep stale ones.
    version = (
        Campaign.objects.unscoped().filter(pk=campaign_id).values_list("subscriptions_version", flat=True).first() or 0
    )
    subscriptions = (
        BuyerSubscription.objects.unscoped()
        .filter(campaign_id=campaign_id)
        .select_related("buyer")
        .only(*SUBSCRIPTION_COLUMNS)
        .order_by("id")
    )
    return CampaignMembers(version, tuple(Member.of(sub) for sub in subscriptions))


# The apply ------------------------------------------------------------------------------------------------------------


def _distribute_locked(
    *,
    lead: Lead,
    campaign: Campaign,
    routing: CampaignRoutingState,
    now: datetime,
    round_number: int,
    members: CampaignMembers,
    static: dict[int, dict],
    lazy: bool,
) -> DistributionOutcome:
    # Pass 1: facts that only the lead, the clock and the configuration decide (worked out before the lock), and the
    # buyers who already own the lead or the person, as the campaign's lock lets them be read.
    candidates = list(members.candidates(campaign))
    for subscription_id, facts in static.items():
        position = members.positions[subscription_id]
        candidates[position] = replace(candidates[position], **facts)
    known_owners = set(campaign.person_owner_ids) | set(campaign.lead_owner_ids)
    if known_owners:
        candidates = [replace(c, already_bought=True) if c.buyer_id in known_owners else c for c in candidates]
    by_id = members.by_id
    state = StrategyState(
        last_subscription_id=routing.last_subscription_id,
        current_weights={int(key): value for key, value in routing.current_weights.items()},
    )
    # Pass 2, under the wallets' locks: money, caps and earlier sales.
    wallets: dict[int, Wallet] = {}
    if lazy and Strategy(campaign.distribution_logic) in LAZY_STRATEGIES:
        reach = _Reach(lead=lead, campaign=campaign, now=now, by_id=by_id)
        selection = select_lazily(candidates, campaign.distribution_logic, state, reach)
        wallets = reach.wallets
    else:
        contenders = [by_id[c.subscription_id] for c in candidates if rejection_reason(c) is None]
        wallets = wallets_lock(
            buyer_ids=[m.subscription.buyer_id for m in contenders], organization_id=campaign.organization_id
        )
        caps_remaining = _caps_remaining(contenders, campaign=campaign, now=now)
        bought, spend_remaining = _post_lock_facts(contenders, lead=lead, now=now)
        completed = []
        for candidate in candidates:
            sub = by_id[candidate.subscription_id].subscription
            if sub.buyer_id in wallets:
                candidate = replace(
                    candidate,
                    spendable=wallets[sub.buyer_id].balance + sub.buyer.credit_limit,
                    caps_remaining=caps_remaining.get(sub.pk),
                    spend_remaining=spend_remaining.get(sub.buyer_id),
                    already_bought=candidate.already_bought or sub.buyer_id in bought,
                )
            completed.append(candidate)
        selection = select(completed, campaign.distribution_logic, state)

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
        sub = by_id[chosen.subscription_id].subscription
        distribution_id, sold = _write_one_sale(
            **written, chosen=chosen, sub=sub, wallet=wallets[chosen.buyer_id], routing_changed=routing_changed
        )
    else:
        distribution_id, sold = _write_outcome(
            **written,
            status=status,
            selection=selection,
            by_id=by_id,
            wallets=wallets,
            routing_changed=routing_changed,
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


class _Reach:
    """``select_lazily``'s ``complete`` for one distribution: the facts of one candidate that need its wallet
    locked, in the order the strategy reaches them. Keeps the wallets it locked, for the sale."""

    def __init__(self, *, lead: Lead, campaign: Campaign, now: datetime, by_id: dict[int, Member]):
        self.lead, self.campaign, self.now, self.by_id = lead, campaign, now, by_id
        self.wallets: dict[int, Wallet] = {}

    def __call__(self, candidate: Candidate) -> Candidate:
        member = self.by_id[candidate.subscription_id]
        sub = member.subscription
        highest = max(self.wallets, default=None)
        # Wallets are waited for in ascending buyer id only (see _apply_atomically).
        wallet = _wallet_lock_counting_caps(
            member, campaign=self.campaign, now=self.now, skip_locked=highest is not None and sub.buyer_id < highest
        )
        if wallet is None:  # held by another distribution (or, rarely, never made): examine everyone, in order
            raise _WalletOutOfOrder(sub.buyer_id)
        self.wallets[sub.buyer_id] = wallet
        bought, spend_remaining = set(), {}
        # A paid sale's own statement refuses a buyer who bought the lead meanwhile (_ONE_SALE_SQL); spending limits
        # and free sales need the facts read here, now that the wallet is held.
        if member.spend_limited or candidate.price <= ZERO:
            bought, spend_remaining = _post_lock_facts([member], lead=self.lead, now=self.now)
        return replace(
            candidate,
            spendable=wallet.balance + sub.buyer.credit_limit,
            caps_remaining=_tightest_cap(sub, wallet.cap_counts) if member.capped else None,
            spend_remaining=spend_remaining.get(sub.buyer_id),
            already_bought=sub.buyer_id in bought,
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
        sub = by_id[chosen.subscription_id].subscription
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
#
# It writes nothing (and answers no row) if the buyer already owns the lead: it starts after the buyer's wallet was
# locked, so it sees any sale of this lead to this buyer in another campaign that committed meanwhile, which the lazy
# apply does not look for again on its own (one round trip fewer; ``_SoldMeanwhile``).
_ONE_SALE_SQL = f"""
WITH unsold AS (
    SELECT 1 WHERE NOT EXISTS (
        SELECT 1 FROM {LeadSale._meta.db_table} WHERE lead_id = %(lead)s AND buyer_id = %(buyer)s
    )
), distribution AS (
    INSERT INTO {LeadDistribution._meta.db_table}
        (organization_id, lead_id, campaign_id, round, status, strategy, reasons, revenue, created_at)
    SELECT %(organization)s, %(lead)s, %(campaign)s, %(round)s, %(sold)s, %(strategy)s, %(reasons)s, %(price)s,
           %(now)s
      FROM unsold
    RETURNING id
), entry AS (
    INSERT INTO {WalletEntry._meta.db_table}
        (organization_id, buyer_id, kind, amount, balance_after, lead_id, note, external_reference, created_at)
    SELECT %(organization)s, %(buyer)s, %(debit)s, %(amount)s, %(balance_after)s, %(lead)s, %(note)s, '', %(now)s
      FROM unsold
    RETURNING id
), wallet AS (
    UPDATE {Wallet._meta.db_table}
       SET balance = %(balance_after)s, low_balance_alerted = %(alerted)s, updated_at = %(written_at)s
     WHERE id = %(wallet)s AND EXISTS (SELECT 1 FROM unsold)
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
     WHERE id = %(routing)s AND %(routing_changed)s AND EXISTS (SELECT 1 FROM unsold)
)
SELECT distribution.id, entry.id, sale.id FROM distribution, entry, sale
"""  # noqa: S608 - the table names come from the models; every value is bound
_ONE_SALE = PreparedStatement(
    _ONE_SALE_SQL,
    {
        "organization": "bigint",
        "lead": "bigint",
        "campaign": "bigint",
        "round": "integer",
        "sold": "varchar",
        "strategy": "varchar",
        "reasons": "jsonb",
        "price": "numeric",
        "now": "timestamptz",
        "buyer": "bigint",
        "debit": "varchar",
        "amount": "numeric",
        "balance_after": "numeric",
        "note": "varchar",
        "alerted": "boolean",
        "written_at": "timestamptz",
        "wallet": "bigint",
        "subscription": "bigint",
        "keys": "varchar[]",
        "last_subscription": "bigint",
        "weights": "jsonb",
        "routing": "bigint",
        "routing_changed": "boolean",
    },
)


class _SoldMeanwhile(Exception):
    """The chosen buyer bought this lead in another campaign while this distribution waited for its wallet."""


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
    [rows] = fetch_prepared(
        [_ONE_SALE],
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
    if not rows:
        raise _SoldMeanwhile(chosen.buyer_id)
    [(distribution_id, entry_id, sale_id)] = rows
    wallet.balance, wallet.low_balance_alerted = after, alerted
    threshold_effects_on_commit(buyer=buyer, alert=alert, recharge=recharge, entry_id=entry_id)
    return distribution_id, [SoldTo(chosen.buyer_id, sub.pk, chosen.price, sale_id)]


def _static_inputs(campaign: Campaign) -> tuple:
    """What of the campaign the static facts depend on."""
    return (campaign.status, campaign.buyers_pick_states)


def _static_facts_all(members: CampaignMembers, *, campaign: Campaign, lead: Lead, now: datetime) -> dict[int, dict]:
    """Subscription id → what the lead and the clock decide, for the members they decide something about (the
    others' candidates have it already: ``CampaignMembers.candidates``)."""
    lead_state = lead.state.strip().upper()
    return {
        m.subscription.pk: _static_facts(m, campaign=campaign, lead=lead, lead_state=lead_state, now=now)
        for m in members.varying
    }


def _static_facts(member: Member, *, campaign: Campaign, lead: Lead, lead_state: str, now: datetime) -> dict:
    sub = member.subscription
    return {
        "schedule_open": not member.scheduled
        or schedule_open(
            now.astimezone(member.zone), days=sub.schedule_days, start=sub.schedule_start, end=sub.schedule_end
        ),
        "state_wanted": not campaign.buyers_pick_states
        or not member.wanted_states
        or lead_state in member.wanted_states,
        "filters_passed": all(rule_matches(rule, lead) for rule in member.rules),
    }


UNLIMITED = Decimal("Infinity")


def _rule(rule: dict) -> SimpleNamespace:
    return SimpleNamespace(field=rule["field"], operator=rule["operator"], value=str(rule.get("value", "")))


def _candidate(member: Member, campaign: Campaign) -> Candidate:
    sub = member.subscription
    price = sub.price_override if sub.price_override is not None else campaign.price_per_lead
    return Candidate(
        subscription_id=sub.pk,
        buyer_id=sub.buyer_id,
        price=price,
        weight=sub.weight,
        priority=sub.priority,
        paused=not (campaign.is_active and sub.is_active and sub.buyer.is_active),
        # Until the wallet is locked, money is not what rejects anyone.
        spendable=UNLIMITED,
    )


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


def _tightest_cap(sub: BuyerSubscription, counts) -> int:
    """Sales left before the subscription's tightest cap, from its sales counted per window (``CAP_WINDOWS`` order)."""
    sold = dict(zip(CAP_WINDOWS, counts or (0, 0, 0, 0), strict=True))
    return min(getattr(sub, name) - sold[name] for name in CAP_WINDOWS if getattr(sub, name) is not None)


# A subscription's sales in the current hour, day, week and month of its buyer's zone, as one array (CAP_WINDOWS
# order), counted on the (buyer, campaign, created_at) index from the earliest of the four starts. The buyer is the
# row of the enclosing query (the locked ``wallet`` or the ``windows`` list).
_CAP_COUNTS = f"""
SELECT ARRAY[count(*) FILTER (WHERE sale.created_at >= {{hour}}), count(*) FILTER (WHERE sale.created_at >= {{day}}),
             count(*) FILTER (WHERE sale.created_at >= {{week}}), count(*) FILTER (WHERE sale.created_at >= {{month}})]
  FROM {LeadSale._meta.db_table} sale
 WHERE sale.campaign_id = {{campaign}} AND sale.buyer_id = {{buyer}}
   AND sale.created_at >= {{earliest}}
"""  # noqa: S608 - the table name comes from the model; every value is bound

_CAP_WINDOWS_OF_MANY = """
  FROM unnest(%(buyers)s::bigint[], %(hours)s::timestamptz[], %(days)s::timestamptz[], %(weeks)s::timestamptz[],
              %(months)s::timestamptz[]) AS windows(buyer_id, hour_start, day_start, week_start, month_start)
"""
_CAP_COUNTS_OF_MANY = "SELECT windows.buyer_id, ({counts}) {windows}".format(
    counts=_CAP_COUNTS.format(
        hour="windows.hour_start",
        day="windows.day_start",
        week="windows.week_start",
        month="windows.month_start",
        campaign="%(campaign)s",
        buyer="windows.buyer_id",
        earliest="LEAST(windows.hour_start, windows.day_start, windows.week_start, windows.month_start)",
    ),
    windows=_CAP_WINDOWS_OF_MANY,
)


def _wallet_lock_counting_caps(
    member: Member, *, campaign: Campaign, now: datetime, skip_locked: bool
) -> Wallet | None:
    """Lock one buyer's wallet and, in the same statement, count its subscription's sales per cap window
    (``cap_counts``, ``None`` when uncapped).

    The counts may share the statement: sales in this campaign are only made under the campaign's lock, which is
    held, so the statement's snapshot has them all even if it waited for the wallet. ``None`` when the wallet is
    locked by someone else and ``skip_locked`` was asked for, or when the buyer has no wallet yet.
    """
    sub = member.subscription
    params = {"organization": campaign.organization_id, "buyer": sub.buyer_id}
    if member.capped:
        starts = cap_window_starts(now, member.zone)
        params.update(
            {_WINDOW_PARAMS[name]: start for name, start in starts.items()},
            campaign=campaign.pk,
            earliest=min(starts.values()),
        )
    [rows] = fetch_prepared([_WALLET_LOCKS[member.capped, skip_locked]], params)
    if not rows:
        return None
    [(*columns, cap_counts)] = rows
    wallet = Wallet.from_db(connection.alias, _WALLET_FIELDS, columns)
    wallet.cap_counts = cap_counts
    return wallet


_WALLET_FIELDS = ["id", "organization_id", "buyer_id", "balance", "low_balance_alerted"]
# The locked wallet's statement names each window's start after the window (CAP_WINDOWS order).
_WINDOW_PARAMS = dict(zip(CAP_WINDOWS, ("hour", "day", "week", "month"), strict=True))


def _wallet_lock_statement(*, capped: bool, skip_locked: bool) -> PreparedStatement:
    types = {"organization": "bigint", "buyer": "bigint"}
    counts = "NULL::bigint[]"
    if capped:
        starts = (*_WINDOW_PARAMS.values(), "earliest")  # each a parameter of that name
        placeholders = {name: f"%({name})s" for name in starts}
        counts = f"({_CAP_COUNTS.format(**placeholders, campaign='%(campaign)s', buyer='wallet.buyer_id')})"
        types.update(campaign="bigint", **dict.fromkeys(starts, "timestamptz"))
    sql = f"""
SELECT {", ".join(f"wallet.{column}" for column in _WALLET_FIELDS)}, {counts}
  FROM {Wallet._meta.db_table} wallet
 WHERE wallet.organization_id = %(organization)s AND wallet.buyer_id = %(buyer)s
   FOR UPDATE{" SKIP LOCKED" if skip_locked else ""}
"""  # noqa: S608 - the table and column names come from the models; every value is bound
    return PreparedStatement(sql, types)


_WALLET_LOCKS = {
    (capped, skip_locked): _wallet_lock_statement(capped=capped, skip_locked=skip_locked)
    for capped in (False, True)
    for skip_locked in (False, True)
}


def _caps_remaining(members: list[Member], *, campaign: Campaign, now: datetime) -> dict[int, int]:
    """Subscription id → sales left before its tightest cap (uncapped subscriptions are absent), in one statement
    whatever the buyers' time zones. Read under the campaign's lock."""
    capped = [m for m in members if m.capped]
    if not capped:
        return {}
    zones: dict[str, dict[str, datetime]] = {}
    windows = {name: [] for name in CAP_WINDOWS}
    for member in capped:
        starts = zones.setdefault(member.zone.key, cap_window_starts(now, member.zone))
        for name in CAP_WINDOWS:
            windows[name].append(starts[name])
    with connection.cursor() as cursor:
        cursor.execute(
            _CAP_COUNTS_OF_MANY,
            {
                "campaign": campaign.pk,
                "buyers": [m.subscription.buyer_id for m in capped],
                "hours": windows["hourly_cap"],
                "days": windows["daily_cap"],
                "weeks": windows["weekly_cap"],
                "months": windows["monthly_cap"],
            },
        )
        counts = dict(cursor.fetchall())
    return {m.subscription.pk: _tightest_cap(m.subscription, counts.get(m.subscription.buyer_id)) for m in capped}


# After the wallets are locked, in one statement: who owns the lead (in any campaign), and what the buyers with
# spending limits spent this week and month of their zone (sales debits net of refunds, in every campaign).
_POST_LOCK_SQL = f"""
SELECT 'owner', sale.buyer_id, NULL::numeric, NULL::numeric FROM {LeadSale._meta.db_table} sale
 WHERE sale.lead_id = %(lead)s
UNION ALL
SELECT 'spent', windows.buyer_id,
       sum(entry.amount) FILTER (WHERE entry.created_at >= windows.week_start),
       sum(entry.amount) FILTER (WHERE entry.created_at >= windows.month_start)
  FROM unnest(%(buyers)s::bigint[], %(weeks)s::timestamptz[], %(months)s::timestamptz[])
       AS windows(buyer_id, week_start, month_start)
  LEFT JOIN {WalletEntry._meta.db_table} entry
    ON entry.buyer_id = windows.buyer_id AND entry.kind = ANY(%(kinds)s) AND entry.lead_id IS NOT NULL
   AND entry.created_at >= LEAST(windows.week_start, windows.month_start)
 GROUP BY windows.buyer_id
"""  # noqa: S608 - the table names come from the models; every value is bound


def _post_lock_facts(members: list[Member], *, lead: Lead, now: datetime) -> tuple[set[int], dict[int, Decimal]]:
    """``(buyers who own the lead, buyer id → what its tightest spending limit still allows)`` for ``members``,
    whose wallets the caller holds.

    Read after the lock, in a statement of its own: every sale and every debit of a buyer is made holding its
    wallet, so nothing committed before the lock was granted is missed. Who owns the lead at all, then only these
    buyers: a short query on the (lead, buyer) index rather than a list of every contender's id.
    """
    if not members:
        return set(), {}
    limited = {}
    for member in members:
        if member.spend_limited:
            limited.setdefault(member.subscription.buyer_id, member)
    weeks, months = [], []
    for member in limited.values():
        starts = cap_window_starts(now, member.zone)
        weeks.append(starts["weekly_cap"])
        months.append(starts["monthly_cap"])
    with connection.cursor() as cursor:
        cursor.execute(
            _POST_LOCK_SQL,
            {
                "lead": lead.pk,
                "buyers": list(limited),
                "weeks": weeks,
                "months": months,
                "kinds": [WalletEntryKind.DEBIT.value, WalletEntryKind.REFUND.value],
            },
        )
        rows = cursor.fetchall()
    ours = {member.subscription.buyer_id for member in members}
    bought = {buyer_id for kind, buyer_id, _, _ in rows if kind == "owner" and buyer_id in ours}
    spent = {buyer_id: (week, month) for kind, buyer_id, week, month in rows if kind == "spent"}
    remaining = {}
    for buyer_id, member in limited.items():
        buyer = member.subscription.buyer
        week, month = spent.get(buyer_id, (None, None))
        remaining[buyer_id] = min(
            limit + (total or ZERO)  # the sums are negative: debits minus refunds
            for limit, total in ((buyer.weekly_spend_limit, week), (buyer.monthly_spend_limit, month))
            if limit is not None
        )
    return bought, remaining


def _after_commit(campaign: Campaign, sale_ids: list[int], *, status: str) -> None:
    """Queue the sales' deliveries and tell open campaign pages, once the sale has committed."""
    from .deliveries import sales_deliver_on_commit
    from .live import campaign_figures_changed

    if sale_ids:
        sales_deliver_on_commit(campaign.organization_id)
    campaign_figures_changed(campaign, status=status)


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
