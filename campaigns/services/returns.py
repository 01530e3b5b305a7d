"""Lead returns: a buyer sends a delivered lead back within the campaign's window, with a reason; the seller
approves (the price goes back to the wallet as a REFUND, and the lead may be offered to other buyers) or rejects.
Every step is audited; a decision is taken once, under the return's row lock."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import audit_record
from leadflow.exceptions import ServiceError
from leadflow.realtime import publish

from ..constants import ReturnReason, ReturnStatus
from ..models import ZERO, LeadReturn, LeadSale
from .wallets import wallet_refund


def return_deadline(sale: LeadSale) -> datetime | None:
    """Until when the sale may be returned; ``None`` when its campaign takes no returns."""
    hours = sale.campaign.return_window_hours
    return sale.created_at + timedelta(hours=hours) if hours else None


def lead_return_request(
    *, sale: LeadSale, reason: str, note: str = "", requested_by=None, request=None, now: datetime | None = None
) -> LeadReturn:
    """The buyer (from the portal) or the seller on its behalf asks to return a sold lead."""
    now = now or timezone.now()
    if reason not in ReturnReason.values:
        raise ServiceError("Pick why the lead is returned.", field="reason")
    if reason == ReturnReason.OTHER and not note.strip():
        raise ServiceError("Say why the lead is returned.", field="note")
    deadline = return_deadline(sale)
    if deadline is None:
        raise ServiceError("This campaign does not take returns.", field="sale")
    if now > deadline:
        raise ServiceError(f"The return window closed on {deadline:%d %b %Y %H:%M} UTC.", field="sale")
    try:
        with transaction.atomic():
            lead_return = LeadReturn.objects.unscoped().create(
                organization_id=sale.organization_id,
                sale=sale,
                buyer_id=sale.buyer_id,
                campaign_id=sale.campaign_id,
                lead_id=sale.lead_id,
                reason=reason,
                note=note.strip()[:500],
                requested_by=requested_by,
                requested_at=now,
            )
            audit_record(
                organization=sale.campaign.organization,
                action="lead_return.requested",
                actor=requested_by,
                target=lead_return,
                changes={"sale": sale.pk, "lead": sale.lead_id, "buyer": sale.buyer_id, "reason": reason},
                request=request,
            )
            publish(sale.campaign.organization, "lead_return.requested", {"id": lead_return.pk, "name": reason})
    except IntegrityError:
        raise ServiceError("This lead has already been returned.", field="sale") from None
    return lead_return


def _locked(lead_return: LeadReturn) -> LeadReturn:
    locked = (
        LeadReturn.objects.unscoped()
        .select_for_update(of=("self",))
        .select_related("sale", "buyer__organization", "campaign", "lead")
        .get(pk=lead_return.pk)
    )
    if locked.status != ReturnStatus.REQUESTED:
        raise ServiceError(f"This return was already {locked.get_status_display().lower()}.", field="status")
    return locked


@transaction.atomic
def lead_return_approve(
    *, lead_return: LeadReturn, actor=None, resell: bool = False, note: str = "", request=None
) -> LeadReturn:
    """Refund the sale's price to the buyer's wallet; with ``resell``, offer the lead again after commit."""
    lead_return = _locked(lead_return)
    sale = lead_return.sale
    if sale.price > ZERO:
        lead_return.refund_entry = wallet_refund(
            buyer=lead_return.buyer,
            amount=sale.price,
            lead=lead_return.lead,
            note=f"Return of lead {sale.lead_id} ({lead_return.get_reason_display()})",
            actor=actor,
            request=request,
        )
    lead_return.status = ReturnStatus.APPROVED
    lead_return.decided_by, lead_return.decided_at = actor, timezone.now()
    lead_return.decision_note, lead_return.resell = note.strip()[:500], bool(resell)
    lead_return.save()
    audit_record(
        organization=lead_return.buyer.organization,
        action="lead_return.approved",
        actor=actor,
        target=lead_return,
        changes={"refund": str(sale.price), "resell": bool(resell), "note": lead_return.decision_note},
        request=request,
    )
    if resell:
        from ..tasks import redistribute_lead

        lead_id, campaign_id = sale.lead_id, sale.campaign_id
        transaction.on_commit(lambda: redistribute_lead.delay(lead_id, campaign_id))
    return lead_return


@transaction.atomic
def lead_return_reject(*, lead_return: LeadReturn, actor=None, note: str = "", request=None) -> LeadReturn:
    if not note.strip():
        raise ServiceError("Tell the buyer why the return is rejected.", field="note")
    lead_return = _locked(lead_return)
    lead_return.status = ReturnStatus.REJECTED
    lead_return.decided_by, lead_return.decided_at = actor, timezone.now()
    lead_return.decision_note = note.strip()[:500]
    lead_return.save()
    audit_record(
        organization=lead_return.buyer.organization,
        action="lead_return.rejected",
        actor=actor,
        target=lead_return,
        changes={"note": lead_return.decision_note},
        request=request,
    )
    return lead_return
