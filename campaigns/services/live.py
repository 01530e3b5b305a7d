"""Live figures: a distribution tells the organization's open campaign pages that a campaign's figures changed.

The page refetches its figures when told (``campaigns/js``), so one message a second per campaign and process is
enough however many leads arrive: at hundreds of leads a second a message per lead would cost every ingest a
Redis round trip and flood the pages.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from leadflow.realtime import publish

CAMPAIGN_FIGURES_EVENT = "campaign.figures"
LIVE_INTERVAL_S = 1.0

_last_sent: dict[int, float] = {}
_lock = threading.Lock()


def campaign_figures_changed(campaign, *, status: str) -> None:
    """Publish ``campaign.figures`` after commit, at most once per ``LIVE_INTERVAL_S`` per campaign and process."""
    now = time.monotonic()
    with _lock:
        last = _last_sent.get(campaign.pk)
        if last is not None and now - last < LIVE_INTERVAL_S:
            return
        _last_sent[campaign.pk] = now
    organization = SimpleNamespace(pk=campaign.organization_id)
    publish(organization, CAMPAIGN_FIGURES_EVENT, {"campaign_id": campaign.pk, "status": status, "quiet": True})


def live_throttle_reset() -> None:
    """Forget when each campaign last published (tests)."""
    with _lock:
        _last_sent.clear()
