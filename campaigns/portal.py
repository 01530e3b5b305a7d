"""The buyer portal's boundary, in one place: who is a portal user of which buyer, and what they may read.

Every portal page inherits ``BuyerPortalMixin``: it resolves the signed-in user's ``BuyerPortalUser``, scopes the
request to that buyer's organization and sets ``request.portal_buyer``; the pages read only through the selectors
below, each filtered by that buyer. Anything else answers 404, exactly like another tenant's row.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib.auth.mixins import AccessMixin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils import timezone

from leadflow.tenancy.context import reset_scope, set_scope

from .models import Buyer, BuyerPortalUser, LeadReturn, LeadSale, WalletEntry

PORTAL_SESSION_KEY = "portal_buyer_access_id"


def portal_accesses(user) -> QuerySet[BuyerPortalUser]:
    """Every buyer the user may see in the portal (the one read that crosses tenants, like memberships do)."""
    return (
        BuyerPortalUser.objects.unscoped()
        .filter(user=user, organization__is_active=True)
        .select_related("buyer__organization", "buyer__wallet")
        .order_by("created_at", "id")
    )


def portal_access_for(user, access_id: int | None = None) -> BuyerPortalUser | None:
    accesses = portal_accesses(user)
    if access_id:
        found = accesses.filter(pk=access_id).first()
        if found is not None:
            return found
    return accesses.first()


class BuyerPortalMixin(AccessMixin):
    """Signed in and a portal user of a buyer: the request is scoped to the buyer's organization, and
    ``request.portal_buyer`` is the only buyer the page may show."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        access = portal_access_for(request.user, request.session.get(PORTAL_SESSION_KEY))
        if access is None:
            raise Http404("No buyer portal access")
        request.portal_access = access
        request.portal_buyer = access.buyer
        token = set_scope(access.buyer.organization)
        timezone.activate(ZoneInfo(access.buyer.timezone))  # the buyer's own clock, as caps and schedules use
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            timezone.deactivate()
            reset_scope(token)


# What a portal user may read: always filtered by their buyer ----------------------------------------------------------


def portal_sales(buyer: Buyer) -> QuerySet[LeadSale]:
    returned = LeadReturn.objects.filter(sale_id=OuterRef("pk"))
    return (
        LeadSale.objects.filter(buyer=buyer)
        .select_related("lead", "campaign")
        .annotate(has_return=Exists(returned))
        .order_by("-created_at", "-id")
    )


def portal_sale(buyer: Buyer, sale_id: int) -> LeadSale:
    sale = portal_sales(buyer).filter(pk=sale_id).first()
    if sale is None:
        raise Http404("No such lead")
    return sale


def portal_ledger(buyer: Buyer) -> QuerySet[WalletEntry]:
    return WalletEntry.objects.filter(buyer=buyer).order_by("-id")  # ledger order (see selectors.buyer_ledger)


def portal_returns(buyer: Buyer) -> QuerySet[LeadReturn]:
    return LeadReturn.objects.filter(buyer=buyer).select_related("lead", "campaign", "sale").order_by("-requested_at")
