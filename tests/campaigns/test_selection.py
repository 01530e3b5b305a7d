"""Properties of the pure selection core: no database, so hypothesis can try thousands of shapes."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.engine.schedule import schedule_open
from campaigns.engine.selection import (
    LAZY_STRATEGIES,
    Candidate,
    Reason,
    Strategy,
    StrategyState,
    evaluate,
    reach_order,
    rejection_reason,
    select,
    select_lazily,
)

PRICE = Decimal("10")


def candidate(subscription_id: int, **facts) -> Candidate:
    facts.setdefault("price", PRICE)
    facts.setdefault("spendable", Decimal("1000"))
    return Candidate(subscription_id=subscription_id, buyer_id=1000 + subscription_id, **facts)


@st.composite
def any_candidates(draw, min_size=0, max_size=12):
    ids = draw(st.lists(st.integers(1, 500), min_size=min_size, max_size=max_size, unique=True))
    return [
        candidate(
            subscription_id,
            price=Decimal(draw(st.integers(0, 30))),
            spendable=Decimal(draw(st.integers(-10, 40))),
            weight=draw(st.integers(1, 10)),
            priority=draw(st.integers(0, 5)),
            caps_remaining=draw(st.none() | st.integers(-2, 3)),
            paused=draw(st.booleans()),
            schedule_open=draw(st.booleans()),
            state_wanted=draw(st.booleans()),
            filters_passed=draw(st.booleans()),
            already_bought=draw(st.booleans()),
        )
        for subscription_id in ids
    ]


def run(candidates, strategy, picks, state=None):
    state = state or StrategyState()
    chosen = Counter()
    for _ in range(picks):
        selection = select(candidates, strategy, state)
        state = selection.state
        chosen.update(c.subscription_id for c in selection.chosen)
    return chosen, state


@given(weights=st.lists(st.integers(1, 10), min_size=1, max_size=8), cycles=st.integers(1, 4))
def test_weighted_round_robin_converges_exactly_to_its_weights(weights, cycles):
    candidates = [candidate(index + 1, weight=weight) for index, weight in enumerate(weights)]
    chosen, _ = run(candidates, Strategy.WEIGHTED, sum(weights) * cycles)
    assert chosen == Counter({c.subscription_id: c.weight * cycles for c in candidates})


@given(weights=st.lists(st.integers(1, 10), min_size=2, max_size=6))
def test_weighted_round_robin_is_smooth_and_deterministic(weights):
    candidates = [candidate(index + 1, weight=weight) for index, weight in enumerate(weights)]
    first, state_a = run(candidates, Strategy.WEIGHTED, 37)
    second, state_b = run(candidates, Strategy.WEIGHTED, 37)
    assert (first, state_a) == (second, state_b)
    # Smooth: in any prefix, nobody runs more than one pick ahead of its exact share.
    state, counts, total = StrategyState(), Counter(), sum(weights)
    for pick in range(1, total + 1):
        selection = select(candidates, Strategy.WEIGHTED, state)
        state = selection.state
        counts.update([selection.chosen[0].subscription_id])
        for c in candidates:
            assert counts[c.subscription_id] - c.weight * pick / total < 1


@given(
    buyers=st.integers(1, 10),
    picks=st.integers(0, 120),
    start=st.none() | st.integers(0, 12),
)
def test_round_robin_is_fair_from_any_position(buyers, picks, start):
    candidates = [candidate(subscription_id) for subscription_id in range(1, buyers + 1)]
    chosen, _ = run(candidates, Strategy.ROUND_ROBIN, picks, StrategyState(last_subscription_id=start))
    counts = [chosen[c.subscription_id] for c in candidates]
    assert sum(counts) == picks
    assert max(counts) - min(counts) <= 1


def test_round_robin_position_survives_a_new_subscription():
    candidates = [candidate(1), candidate(2), candidate(3)]
    selection = select(candidates, Strategy.ROUND_ROBIN, StrategyState(last_subscription_id=2))
    assert selection.chosen[0].subscription_id == 3
    # A subscription added after the cursor is next in line, nobody is skipped or served twice.
    selection = select([*candidates, candidate(4)], Strategy.ROUND_ROBIN, selection.state)
    assert selection.chosen[0].subscription_id == 4
    selection = select([*candidates, candidate(4)], Strategy.ROUND_ROBIN, selection.state)
    assert selection.chosen[0].subscription_id == 1


@given(any_candidates(min_size=1))
def test_waterfall_takes_the_first_eligible_by_priority_and_falls_back(candidates):
    selection = select(candidates, Strategy.WATERFALL, StrategyState())
    eligible = [c for c in candidates if rejection_reason(c) is None]
    if not eligible:
        assert selection.chosen == ()
        return
    (chosen,) = selection.chosen
    assert chosen == min(eligible, key=lambda c: (c.priority, c.subscription_id))
    # Everyone ahead of it in the waterfall was ineligible, with their own reason.
    for c in candidates:
        if (c.priority, c.subscription_id) < (chosen.priority, chosen.subscription_id):
            assert selection.rejected[c.buyer_id] == rejection_reason(c) is not None


def test_waterfall_falls_back_when_the_first_is_capped():
    first = candidate(1, priority=1, caps_remaining=0)
    second = candidate(2, priority=2)
    third = candidate(3, priority=3)
    selection = select([third, first, second], Strategy.WATERFALL, StrategyState())
    assert [c.subscription_id for c in selection.chosen] == [2]
    assert selection.rejected == {first.buyer_id: Reason.CAPPED, third.buyer_id: Reason.NOT_CHOSEN}


@given(any_candidates())
def test_broadcast_reaches_every_eligible_buyer_exactly_once(candidates):
    selection = select(candidates, Strategy.BROADCAST, StrategyState())
    chosen = [c.buyer_id for c in selection.chosen]
    assert len(chosen) == len(set(chosen))
    assert set(chosen) == {c.buyer_id for c in candidates if rejection_reason(c) is None}


@settings(max_examples=300)
@given(
    candidates=any_candidates(),
    strategy=st.sampled_from(list(Strategy)),
    last=st.none() | st.integers(0, 500),
    weights=st.dictionaries(st.integers(1, 500), st.integers(-50, 50), max_size=6),
)
def test_ineligible_buyers_are_never_chosen_and_every_other_buyer_has_a_reason(candidates, strategy, last, weights):
    selection = select(candidates, strategy, StrategyState(last, weights))
    chosen = {c.buyer_id for c in selection.chosen}
    for c in candidates:
        reason = rejection_reason(c)
        if reason is not None:
            assert c.buyer_id not in chosen
            assert selection.rejected[c.buyer_id] == reason
        elif c.buyer_id not in chosen:
            assert selection.rejected[c.buyer_id] == Reason.NOT_CHOSEN
    assert chosen.isdisjoint(selection.rejected)
    assert chosen | set(selection.rejected) == {c.buyer_id for c in candidates}
    if not selection.chosen:
        assert selection.state == StrategyState(last, weights)


def test_reasons_are_checked_in_order():
    assert rejection_reason(candidate(1, paused=True, caps_remaining=0)) == Reason.PAUSED
    assert rejection_reason(candidate(1, schedule_open=False, state_wanted=False)) == Reason.OUTSIDE_SCHEDULE
    assert rejection_reason(candidate(1, state_wanted=False, filters_passed=False)) == Reason.STATE_NOT_WANTED
    assert rejection_reason(candidate(1, filters_passed=False)) == Reason.FILTERED_OUT
    assert rejection_reason(candidate(1, already_bought=True, caps_remaining=0)) == Reason.ALREADY_BOUGHT
    assert rejection_reason(candidate(1, caps_remaining=0, spendable=Decimal(0))) == Reason.CAPPED
    assert rejection_reason(candidate(1, spendable=Decimal("9.99"))) == Reason.INSUFFICIENT_FUNDS
    assert rejection_reason(candidate(1, spendable=Decimal("10"), caps_remaining=1)) is None
    assert evaluate([candidate(2), candidate(1, paused=True)]).rejected == {1001: Reason.PAUSED}


def test_weighted_ineligible_buyers_keep_their_state():
    a, b = candidate(1, weight=3), candidate(2, weight=1)
    state = StrategyState(current_weights={1: 0, 2: -2})
    selection = select([a, candidate(2, weight=1, paused=True)], Strategy.WEIGHTED, state)
    assert selection.chosen == (a,)
    assert selection.state.current_weights == {1: 0, 2: -2}
    assert select([a, b], Strategy.WEIGHTED, selection.state).chosen == (a,)


# Delivery schedule ---------------------------------------------------------------------------------------------------

MONDAY_NOON = datetime(2026, 11, 23, 12, 0)  # a Monday


def test_schedule_without_hours_follows_the_days():
    assert schedule_open(MONDAY_NOON, days=[], start=None, end=None)
    assert schedule_open(MONDAY_NOON, days=[0, 1], start=None, end=None)
    assert not schedule_open(MONDAY_NOON, days=[5, 6], start=None, end=None)


def test_schedule_daytime_window():
    hours = {"start": time(9), "end": time(17)}
    assert schedule_open(MONDAY_NOON, days=[0], **hours)
    assert not schedule_open(MONDAY_NOON.replace(hour=17), days=[0], **hours)
    assert schedule_open(MONDAY_NOON.replace(hour=9), days=[], **hours)
    assert not schedule_open(MONDAY_NOON, days=[1], **hours)


def test_overnight_window_belongs_to_the_day_it_starts():
    hours = {"start": time(22), "end": time(6)}
    sunday_night = datetime(2026, 11, 22, 23, 0)
    monday_early = datetime(2026, 11, 23, 2, 0)
    assert schedule_open(sunday_night, days=[6], **hours)
    assert schedule_open(monday_early, days=[6], **hours)  # Sunday's window, after midnight
    assert not schedule_open(monday_early, days=[0], **hours)
    assert not schedule_open(MONDAY_NOON, days=[], **hours)


# Lazy evaluation (round robin and waterfall) --------------------------------------------------------------------------

STATIC_FACTS = ("paused", "schedule_open", "state_wanted", "filters_passed")


def known_before_the_lock(c: Candidate) -> Candidate:
    """What the apply knows of a candidate before it locks anything: only the static facts."""
    return candidate(
        c.subscription_id,
        price=c.price,
        spendable=Decimal("Infinity"),
        weight=c.weight,
        priority=c.priority,
        **{name: getattr(c, name) for name in STATIC_FACTS},
    )


@settings(max_examples=400)
@given(
    candidates=any_candidates(),
    strategy=st.sampled_from(sorted(LAZY_STRATEGIES)),
    last=st.none() | st.integers(0, 500),
)
def test_lazy_selection_chooses_what_the_full_one_does_and_stops_at_its_pick(candidates, strategy, last):
    state = StrategyState(last, {7: 3})
    full = {c.subscription_id: c for c in candidates}
    asked = []

    def complete(c: Candidate) -> Candidate:
        asked.append(c.subscription_id)
        return full[c.subscription_id]

    lazy = select_lazily([known_before_the_lock(c) for c in candidates], strategy, state, complete)
    eager = select(candidates, strategy, state)
    assert lazy.chosen == eager.chosen and lazy.state == eager.state
    # Asked about exactly the statically eligible candidates up to the pick, in the strategy's order, each once.
    statically_eligible = [c for c in candidates if rejection_reason(known_before_the_lock(c)) is None]
    order = [c.subscription_id for c in reach_order(statically_eligible, strategy, state)]
    reached = order[: order.index(lazy.chosen[0].subscription_id) + 1] if lazy.chosen else order
    assert asked == reached
    # Everyone reached has their own reason; everyone after the pick is "not chosen"; nothing else differs.
    for c in candidates:
        if lazy.chosen and c.buyer_id == lazy.chosen[0].buyer_id:
            assert c.buyer_id not in lazy.rejected
        elif c.subscription_id in asked or c.subscription_id not in order:
            assert lazy.rejected[c.buyer_id] == eager.rejected[c.buyer_id]
        else:
            assert lazy.rejected[c.buyer_id] == Reason.NOT_CHOSEN


def test_round_robin_reaches_from_the_cursor_and_wraps():
    candidates = [candidate(n) for n in (5, 2, 9, 7)]
    state = StrategyState(last_subscription_id=7)
    assert [c.subscription_id for c in reach_order(candidates, Strategy.ROUND_ROBIN, state)] == [9, 2, 5, 7]
    assert [c.subscription_id for c in reach_order(candidates, Strategy.ROUND_ROBIN, StrategyState())] == [2, 5, 7, 9]


@pytest.mark.parametrize("strategy", [Strategy.WEIGHTED, Strategy.BROADCAST])
def test_lazy_selection_refuses_strategies_that_need_everyone(strategy):
    with pytest.raises(ValueError, match="examines every candidate"):
        select_lazily([candidate(1)], strategy, StrategyState(), lambda c: c)
