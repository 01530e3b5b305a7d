"""Delivery windows: weekdays and hours in the buyer's own time zone."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time


def schedule_open(local_now: datetime, *, days: Collection[int], start: time | None, end: time | None) -> bool:
    """Whether a window is open at ``local_now`` (already in the buyer's time zone).

    ``days`` are weekdays, 0 = Monday; empty means every day. No ``start``/``end`` means all day. A window whose
    end is not after its start runs overnight and belongs to the day it starts on: Friday 22:00 to 06:00 is open
    at 02:00 on Saturday morning.
    """
    clock = local_now.time().replace(tzinfo=None)
    weekday = local_now.weekday()
    if start is None or end is None:
        return not days or weekday in days
    if start < end:
        return (not days or weekday in days) and start <= clock < end
    # Overnight: the evening part belongs to today, the early-morning part to yesterday's window.
    if clock >= start:
        return not days or weekday in days
    if clock < end:
        return not days or (weekday - 1) % 7 in days
    return False
