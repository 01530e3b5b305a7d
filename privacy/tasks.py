"""Celery tasks of privacy: thin wrappers over services. Scheduled in CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task
def apply_retention() -> dict[str, dict[str, int]]:
    """Every organization's retention policy, once a night."""
    results = services.retention_apply_all()
    changed = {organization.slug: counts for organization, counts in results.items() if any(counts.values())}
    if changed:
        logger.info("retention applied: %s", changed)
    return changed
