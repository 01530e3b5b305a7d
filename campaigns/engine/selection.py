"""Who gets a lead: eligibility → strategy → choice, from plain facts gathered under lock by the apply.

Everything here is deterministic: the same candidates and state always give the same choice and the same new
state, which is what lets the rotation live in one database row and the properties be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    WATERFALL = "waterfall"
    BROADCAST = "broadcast"


class Reason(StrEnum):
    """Why a subscribed buyer did not get a lead, in the order they are checked (the first one found is kept)."""

    PAUSED = "paused"  # the buyer, its subscription or the campaign is paused
    OUTSIDE_SCHEDULE = "outside_schedule"
    STATE_NOT_WANTED = "state_not_wanted"
    FILTERED_OUT = "filtered_out"
    ALREADY_BOUGHT = "already_bought"  # this lead, or the same person, was sold to the buyer before
    CAPPED = "capped"
    SPENDING_LIMIT = "spending_limit"  # the buyer's weekly or monthly spending limit has no room for the price
    INSUFFICIENT_FUNDS = "insufficient_funds"
    # Eligible, or not examined: the strategy picked someone else (round robin and waterfall stop at their pick,
    # so buyers after it in their order are never asked about money or caps).
    NOT_CHOSEN = "not_chosen"


@dataclass(frozen=True)
class Candidate:
    """One subscription's facts at the moment of the sale. ``caps_remaining`` is ``None`` when uncapped;
    ``spendable`` is the wallet balance plus the buyer's credit limit; ``spend_remaining`` is what the buyer's
    tightest spending limit still allows (``None`` without limits)."""

    subscription_id: int
    buyer_id: int
    price: Decimal
    spendable: Decimal
    weight: int = 1
    priority: int = 0
    caps_remaining: int | None = None
    spend_remaining: Decimal | None = None
    paused: bool = False
    schedule_open: bool = True
    state_wanted: bool = True
    filters_passed: bool = True
    already_bought: bool = False


def rejection_reason(candidate: Candidate) -> Reason | None:
    if candidate.paused:
        return Reason.PAUSED
    if not candidate.schedule_open:
        return Reason.OUTSIDE_SCHEDULE
    if not candidate.state_wanted:
        return Reason.STATE_NOT_WANTED
    if not candidate.filters_passed:
        return Reason.FILTERED_OUT
    if candidate.already_bought:
        return Reason.ALREADY_BOUGHT
    if candidate.caps_remaining is not None and candidate.caps_remaining <= 0:
        return Reason.CAPPED
    if candidate.spend_remaining is not None and candidate.spend_remaining < candidate.price:
        return Reason.SPENDING_LIMIT
    if candidate.spendable < candidate.price:
        return Reason.INSUFFICIENT_FUNDS
    return None


@dataclass(frozen=True)
class Eligibility:
    eligible: tuple[Candidate, ...]
    rejected: Mapping[int, Reason]  # buyer id → reason


def evaluate(candidates: Iterable[Candidate]) -> Eligibility:
    eligible, rejected = [], {}
    for candidate in sorted(candidates, key=lambda c: c.subscription_id):
        reason = rejection_reason(candidate)
        if reason is None:
            eligible.append(candidate)
        else:
            rejected[candidate.buyer_id] = reason
    return Eligibility(tuple(eligible), rejected)


@dataclass(frozen=True)
class StrategyState:
    """The rotation between leads: the round-robin cursor and the smooth weighted round robin's current weights."""

    last_subscription_id: int | None = None
    current_weights: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    chosen: tuple[Candidate, ...]
    rejected: Mapping[int, Reason]  # every candidate not chosen, with its reason
    state: StrategyState


def select(candidates: Iterable[Candidate], strategy: Strategy | str, state: StrategyState) -> Selection:
    """Pick the buyers for one lead. Nobody eligible: nothing chosen and the state unchanged."""
    candidates = list(candidates)
    eligibility = evaluate(candidates)
    eligible = eligibility.eligible
    strategy = Strategy(strategy)
    if not eligible:
        chosen, new_state = (), state
    elif strategy is Strategy.ROUND_ROBIN:
        pick = round_robin_pick(eligible, state.last_subscription_id)
        chosen, new_state = (pick,), StrategyState(pick.subscription_id, state.current_weights)
    elif strategy is Strategy.WEIGHTED:
        pick, weights = smooth_weighted_pick(eligible, state.current_weights)
        chosen, new_state = (pick,), StrategyState(state.last_subscription_id, weights)
    elif strategy is Strategy.WATERFALL:
        chosen, new_state = (waterfall_pick(eligible),), state
    else:
        chosen, new_state = eligible, state
    chosen_ids = {c.subscription_id for c in chosen}
    rejected = dict(eligibility.rejected)
    for candidate in eligible:
        if candidate.subscription_id not in chosen_ids:
            rejected[candidate.buyer_id] = Reason.NOT_CHOSEN
    return Selection(tuple(chosen), rejected, new_state)


# Strategies that sell to one buyer, the first eligible in an order known before any money or cap is read: the apply
# examines their candidates one at a time and stops at the pick (``select_lazily``). Weighted needs every buyer's
# eligibility to move its weights, broadcast sells to all: both examine everyone (``select``).
LAZY_STRATEGIES = frozenset({Strategy.ROUND_ROBIN, Strategy.WATERFALL})


def reach_order(candidates: Iterable[Candidate], strategy: Strategy | str, state: StrategyState) -> list[Candidate]:
    """The order a lazy strategy considers candidates in; its pick is the first eligible one.

    Round robin: the subscription ids after the one served last, then from the lowest (the same pick as
    ``round_robin_pick``). Waterfall: priority, then id (``waterfall_pick``).
    """
    strategy = Strategy(strategy)
    if strategy is Strategy.ROUND_ROBIN:
        ordered = sorted(candidates, key=lambda c: c.subscription_id)
        last = state.last_subscription_id
        if last is None:
            return ordered
        return [c for c in ordered if c.subscription_id > last] + [c for c in ordered if c.subscription_id <= last]
    if strategy is Strategy.WATERFALL:
        return sorted(candidates, key=lambda c: (c.priority, c.subscription_id))
    raise ValueError(f"{strategy} examines every candidate: use select()")


def select_lazily(
    candidates: Iterable[Candidate],
    strategy: Strategy | str,
    state: StrategyState,
    complete: Callable[[Candidate], Candidate],
) -> Selection:
    """``select`` for a lazy strategy, asking for the expensive facts one candidate at a time.

    ``candidates`` carry the facts known without a lock (paused, schedule, states, filters); ``complete(c)`` returns
    ``c`` with the rest (money, caps, earlier sales) and is called in ``reach_order`` for those still in the running,
    until one is eligible. The choice and the new state are exactly ``select``'s on the completed candidates; the
    buyers never reached are ``NOT_CHOSEN``.
    """
    strategy = Strategy(strategy)
    if strategy not in LAZY_STRATEGIES:
        raise ValueError(f"{strategy} examines every candidate: use select()")
    eligibility = evaluate(candidates)
    rejected = dict(eligibility.rejected)
    chosen: Candidate | None = None
    for candidate in reach_order(eligibility.eligible, strategy, state):
        if chosen is not None:
            rejected[candidate.buyer_id] = Reason.NOT_CHOSEN
            continue
        completed = complete(candidate)
        reason = rejection_reason(completed)
        if reason is None:
            chosen = completed
        else:
            rejected[candidate.buyer_id] = reason
    if chosen is None:
        return Selection((), rejected, state)
    if strategy is Strategy.ROUND_ROBIN:
        state = StrategyState(chosen.subscription_id, state.current_weights)
    return Selection((chosen,), rejected, state)


def round_robin_pick(eligible: tuple[Candidate, ...], last_subscription_id: int | None) -> Candidate:
    """The next subscription id after the one served last, wrapping around.

    The cursor is an id, not an index, so adding or removing a subscription does not skip or repeat anyone.
    """
    ordered = sorted(eligible, key=lambda c: c.subscription_id)
    if last_subscription_id is not None:
        for candidate in ordered:
            if candidate.subscription_id > last_subscription_id:
                return candidate
    return ordered[0]


def smooth_weighted_pick(
    eligible: tuple[Candidate, ...], current_weights: Mapping[int, int]
) -> tuple[Candidate, dict[int, int]]:
    """nginx's smooth weighted round robin: every eligible subscription gains its weight, the highest is picked
    and loses the total. Over any sum(weights) consecutive picks from a zero state each gets exactly its weight,
    interleaved rather than in bursts. Ties go to the lowest subscription id. Subscriptions not eligible this
    time keep their current weight untouched.
    """
    weights = dict(current_weights)
    total = 0
    best: Candidate | None = None
    for candidate in sorted(eligible, key=lambda c: c.subscription_id):
        weights[candidate.subscription_id] = weights.get(candidate.subscription_id, 0) + candidate.weight
        total += candidate.weight
        if best is None or weights[candidate.subscription_id] > weights[best.subscription_id]:
            best = candidate
    assert best is not None
    weights[best.subscription_id] -= total
    return best, weights


def waterfall_pick(eligible: tuple[Candidate, ...]) -> Candidate:
    """The first eligible subscription by priority (lower first), then id: ineligible ones are fallen through."""
    return min(eligible, key=lambda c: (c.priority, c.subscription_id))
