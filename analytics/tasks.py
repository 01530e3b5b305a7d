from __future__ import annotations

from celery import shared_task

from leadflow.celery import PRIORITY_BULK


@shared_task(priority=PRIORITY_BULK)
def refresh_rollups() -> int:
    """Beat, every 5 minutes: every organization's live windows and stale days (a bulk job: behind any lead)."""
    from .services import rollups_refresh_all

    return len(rollups_refresh_all())
