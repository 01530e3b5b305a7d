"""Billing's automatic pause: a suspended subscription pauses the organization's active campaigns (so no lead is
distributed while nothing is paid), and payment resumes exactly those — never one paused by hand or for budget.

``Campaign.pause_reason`` says who paused it; the database requires a reason on every paused campaign.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..constants import CampaignStatus, PauseReason
from ..models import Campaign


@transaction.atomic
def campaigns_pause_for_billing(organization) -> int:
    """Pause every active campaign of ``organization`` for billing; returns how many. Running it twice pauses
    nothing more."""
    return (
        Campaign.objects.unscoped()
        .filter(organization=organization, status=CampaignStatus.ACTIVE)
        .update(status=CampaignStatus.PAUSED, pause_reason=PauseReason.BILLING, updated_at=timezone.now())
    )


@transaction.atomic
def campaigns_resume_after_billing(organization) -> int:
    """Resume the campaigns billing paused (and only those); returns how many."""
    return (
        Campaign.objects.unscoped()
        .filter(organization=organization, status=CampaignStatus.PAUSED, pause_reason=PauseReason.BILLING)
        .update(status=CampaignStatus.ACTIVE, pause_reason="", updated_at=timezone.now())
    )
