"""The returns queue: buyers' requests waiting for a decision, and the latest decisions."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from leadflow.exceptions import ServiceError

from .. import selectors
from ..constants import ReturnStatus
from ..forms import ReturnDecisionForm
from ..models import LeadReturn
from ..services import returns
from .common import CampaignsPageMixin

RECENT_DECISIONS = 30


class ReturnQueueView(CampaignsPageMixin, View):
    def get(self, request):
        pending = list(selectors.returns_queue())
        return render(
            request,
            "campaigns/returns/queue.html",
            {
                "pending": [(item, ReturnDecisionForm(prefix=f"r{item.pk}")) for item in pending],
                "decided": selectors.returns_queue(status=None).exclude(status=ReturnStatus.REQUESTED)[
                    :RECENT_DECISIONS
                ],
            },
        )


class ReturnDecideView(CampaignsPageMixin, View):
    def post(self, request, pk: int):
        lead_return = get_object_or_404(LeadReturn, pk=pk)
        form = ReturnDecisionForm(request.POST, prefix=f"r{pk}")
        if not form.is_valid():
            messages.error(request, "Pick approve or reject.")
            return redirect("campaigns:returns")
        data = form.cleaned_data
        try:
            if data["decision"] == "approve":
                decided = returns.lead_return_approve(
                    lead_return=lead_return,
                    actor=request.user,
                    resell=data["resell"],
                    note=data["note"],
                    request=request,
                )
                extra = " and offered to other buyers" if decided.resell else ""
                messages.success(request, f"Return approved: {decided.sale.price} refunded to {decided.buyer}{extra}.")
            else:
                returns.lead_return_reject(
                    lead_return=lead_return, actor=request.user, note=data["note"], request=request
                )
                messages.success(request, "Return rejected; the buyer sees your note.")
        except ServiceError as error:
            messages.error(request, error.message)
        return redirect("campaigns:returns")
