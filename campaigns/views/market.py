"""Categories (with the field schema editor), campaigns (with live figures) and subscriptions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from leadflow.exceptions import ServiceError

from .. import selectors
from ..constants import CampaignStatus, PauseReason
from ..forms import (
    PERIODS,
    CampaignForm,
    CampaignSpendForm,
    CategoryFieldFormSet,
    CategoryForm,
    FieldFilterFormSet,
    SubscriptionForm,
    category_field_initial,
)
from ..models import BuyerSubscription, Campaign, Category, LeadDistribution
from ..services import budgets, catalog, redistribution
from ..services.live import CAMPAIGN_FIGURES_EVENT
from .common import CampaignsPageMixin, add_errors, period_since

REFUSALS = (ServiceError, ValidationError)
SCHEMA_PREFIX = "fields"
FILTERS_PREFIX = "filters"


# Categories ----------------------------------------------------------------------------------------------------------


class CategoryListView(CampaignsPageMixin, View):
    def render_page(self, request, form=None, formset=None, status=200):
        categories = Category.objects.annotate(campaign_count=Count("campaigns")).order_by("name")
        return render(
            request,
            "campaigns/categories/list.html",
            {
                "categories": categories,
                "form": form or CategoryForm(),
                "formset": formset or CategoryFieldFormSet(prefix=SCHEMA_PREFIX),
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = CategoryForm(request.POST)
        formset = CategoryFieldFormSet(request.POST, prefix=SCHEMA_PREFIX)
        if form.is_valid() and formset.is_valid():
            try:
                category = catalog.category_save(
                    category=Category(organization=request.organization),
                    data={**form.cleaned_data, "fields": formset.fields_list()},
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, f"Category {category.name} created.")
                return redirect("campaigns:category_detail", pk=category.pk)
        return self.render_page(request, form=form, formset=formset, status=400)


class CategoryDetailView(CampaignsPageMixin, View):
    def render_page(self, request, category, form=None, formset=None, status=200):
        return render(
            request,
            "campaigns/categories/detail.html",
            {
                "category": category,
                "campaigns": category.campaigns.order_by("name"),
                "form": form or CategoryForm(instance=category),
                "formset": formset
                or CategoryFieldFormSet(prefix=SCHEMA_PREFIX, initial=category_field_initial(category)),
            },
            status=status,
        )

    def get(self, request, pk: int):
        return self.render_page(request, get_object_or_404(Category, pk=pk))

    def post(self, request, pk: int):
        category = get_object_or_404(Category, pk=pk)
        form = CategoryForm(request.POST, instance=get_object_or_404(Category, pk=pk))
        formset = CategoryFieldFormSet(request.POST, prefix=SCHEMA_PREFIX)
        if form.is_valid() and formset.is_valid():
            try:
                catalog.category_save(
                    category=category,
                    data={
                        "name": form.cleaned_data["name"],
                        "slug": form.cleaned_data["slug"],
                        "fields": formset.fields_list(),
                    },
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, "Category saved: new leads of its campaigns are checked against it.")
                return redirect("campaigns:category_detail", pk=category.pk)
        return self.render_page(request, category, form=form, formset=formset, status=400)


# Campaigns -----------------------------------------------------------------------------------------------------------


class CampaignListView(CampaignsPageMixin, View):
    def render_page(self, request, form=None, status=200):
        period, since = period_since(request)
        window = Q(distributions__created_at__gte=since) if since else Q()
        campaigns = (
            Campaign.objects.select_related("category")
            .annotate(
                lead_count=Count("distributions", filter=window & Q(distributions__round=1)),
                sold_count=Count("distributions", filter=window & Q(distributions__status="sold")),
                revenue=Sum("distributions__revenue", filter=window),
                buyer_count=Count("subscriptions", distinct=True),
            )
            .order_by("name", "id")
        )
        return render(
            request,
            "campaigns/campaigns/list.html",
            {
                "campaigns": campaigns,
                "form": form or CampaignForm(),
                "period": period,
                "periods": PERIODS,
                "has_categories": Category.objects.exists(),
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = CampaignForm(request.POST)
        if form.is_valid():
            try:
                campaign = catalog.campaign_save(
                    campaign=Campaign(organization=request.organization),
                    data=form.cleaned_data,
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, f"Campaign {campaign.name} created: subscribe buyers to start selling.")
                return redirect("campaigns:detail", pk=campaign.pk)
        return self.render_page(request, form=form, status=400)


def _figures_context(request, campaign: Campaign) -> dict:
    period, since = period_since(request)
    figures = selectors.campaign_figures(campaign, since=since)
    top = max(figures["unsold_reasons"].values(), default=0)
    return {
        "campaign": campaign,
        "figures": figures,
        "reason_bars": [
            (reason, count, round(100 * count / top) if top else 0)
            for reason, count in figures["unsold_reasons"].items()
        ],
        "buyers": selectors.campaign_buyer_figures(campaign, since=since),
        "period": period,
        "periods": PERIODS,
        "live_event": CAMPAIGN_FIGURES_EVENT,
    }


class CampaignDetailView(CampaignsPageMixin, View):
    def render_page(
        self, request, campaign, form=None, subscription_form=None, filters=None, spend_form=None, status=200
    ):
        context = _figures_context(request, campaign)
        context.update(
            form=form or CampaignForm(instance=campaign),
            budget=selectors.campaign_budget_usage(campaign),
            spend_entries=selectors.campaign_spend_entries(campaign),
            spend_form=spend_form or CampaignSpendForm(),
            subscription_form=subscription_form
            or SubscriptionForm(initial={"campaign": campaign.pk}, fixed="campaign"),
            filters=filters or FieldFilterFormSet(prefix=FILTERS_PREFIX),
            recent=selectors.campaign_recent_distributions(campaign),
            suppliers=campaign.suppliers.order_by("name"),
        )
        return render(request, "campaigns/campaigns/detail.html", context, status=status)

    def get(self, request, pk: int):
        return self.render_page(request, get_object_or_404(Campaign.objects.select_related("category"), pk=pk))

    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        form = CampaignForm(request.POST, instance=get_object_or_404(Campaign, pk=pk))
        if form.is_valid():
            try:
                catalog.campaign_save(campaign=campaign, data=form.cleaned_data, actor=request.user, request=request)
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, "Campaign saved.")
                return redirect("campaigns:detail", pk=campaign.pk)
        return self.render_page(request, campaign, form=form, status=400)


class CampaignFiguresView(CampaignsPageMixin, View):
    """The live figures block: the page fetches it again when told the campaign's figures changed."""

    def get(self, request, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        return render(request, "campaigns/campaigns/partials/figures.html", _figures_context(request, campaign))


class CampaignStatusView(CampaignsPageMixin, View):
    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        if campaign.status == CampaignStatus.ACTIVE:
            catalog.campaign_pause(campaign=campaign, actor=request.user, request=request)
            messages.success(request, f"{campaign.name} is paused: its leads are no longer sold.")
            return redirect("campaigns:detail", pk=campaign.pk)
        try:
            catalog.campaign_resume(campaign=campaign, actor=request.user, request=request)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{campaign.name} is selling again.")
        return redirect("campaigns:detail", pk=campaign.pk)


class CampaignSpendView(CampaignsPageMixin, View):
    """Record ad spend; the campaign pauses when that spends its daily or total budget."""

    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.select_related("category"), pk=pk)
        form = CampaignSpendForm(request.POST)
        if form.is_valid():
            try:
                budgets.campaign_spend_record(
                    campaign=campaign,
                    amount=form.cleaned_data["amount"],
                    spent_on=form.cleaned_data["spent_on"],
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                campaign.refresh_from_db(fields=["status", "pause_reason"])
                messages.success(request, "Ad spend recorded.")
                if campaign.pause_reason == PauseReason.BUDGET:
                    messages.warning(request, f"{campaign.name} is paused: its budget is spent.")
                return redirect("campaigns:detail", pk=campaign.pk)
        return CampaignDetailView().render_page(request, campaign, spend_form=form, status=400)


class CampaignRedistributeView(CampaignsPageMixin, View):
    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.select_related("organization"), pk=pk)
        counts = redistribution.campaign_redistribute_unsold(campaign=campaign, actor=request.user, request=request)
        messages.success(
            request,
            f"Offered {counts['offered']} unsold leads again: {counts['sold']} sold, {counts['unsold']} still unsold.",
        )
        return redirect("campaigns:detail", pk=campaign.pk)


class DistributionRedistributeView(CampaignsPageMixin, View):
    def post(self, request, pk: int):
        distribution = get_object_or_404(LeadDistribution, pk=pk)
        try:
            outcome = redistribution.distribution_redistribute(
                distribution=distribution, actor=request.user, request=request
            )
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Lead {distribution.lead_id} offered again: {outcome.status}.")
        return redirect("campaigns:detail", pk=distribution.campaign_id)


# Subscriptions -------------------------------------------------------------------------------------------------------


def _subscription_data(form, filters) -> dict:
    return {**form.cleaned_data, "field_filters": filters.rules()}


class SubscriptionCreateView(CampaignsPageMixin, View):
    """Subscribe a buyer to a campaign, from the campaign's page or the buyer's."""

    def post(self, request):
        fixed = request.POST.get("from") if request.POST.get("from") in ("buyer", "campaign") else None
        form = SubscriptionForm(request.POST, fixed=fixed)
        filters = FieldFilterFormSet(request.POST, prefix=FILTERS_PREFIX)
        if form.is_valid() and filters.is_valid():
            try:
                subscription = catalog.subscription_save(
                    subscription=BuyerSubscription(organization=request.organization),
                    data=_subscription_data(form, filters),
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, f"{subscription.buyer} now buys from {subscription.campaign}.")
                if fixed == "buyer":
                    return redirect("campaigns:buyer_detail", pk=subscription.buyer_id)
                return redirect("campaigns:detail", pk=subscription.campaign_id)
        return render(
            request,
            "campaigns/subscriptions/detail.html",
            {"form": form, "filters": filters, "subscription": None, "fixed": fixed},
            status=400,
        )


class SubscriptionDetailView(CampaignsPageMixin, View):
    def render_page(self, request, subscription, form=None, filters=None, status=200):
        return render(
            request,
            "campaigns/subscriptions/detail.html",
            {
                "subscription": subscription,
                "form": form or SubscriptionForm(instance=subscription),
                "filters": filters
                or FieldFilterFormSet(prefix=FILTERS_PREFIX, initial=list(subscription.field_filters)),
            },
            status=status,
        )

    def get_subscription(self, pk: int) -> BuyerSubscription:
        return get_object_or_404(BuyerSubscription.objects.select_related("buyer", "campaign"), pk=pk)

    def get(self, request, pk: int):
        return self.render_page(request, self.get_subscription(pk))

    def post(self, request, pk: int):
        subscription = self.get_subscription(pk)
        if request.POST.get("delete"):
            try:
                catalog.catalog_delete(instance=subscription, actor=request.user, request=request)
            except ServiceError as error:
                messages.error(request, error.message)
                return redirect("campaigns:subscription_detail", pk=pk)
            messages.success(request, f"{subscription.buyer} no longer buys from {subscription.campaign}.")
            return redirect("campaigns:detail", pk=subscription.campaign_id)
        form = SubscriptionForm(request.POST, instance=self.get_subscription(pk))
        filters = FieldFilterFormSet(request.POST, prefix=FILTERS_PREFIX)
        if form.is_valid() and filters.is_valid():
            try:
                catalog.subscription_save(
                    subscription=subscription,
                    data=_subscription_data(form, filters),
                    actor=request.user,
                    request=request,
                )
            except REFUSALS as error:
                add_errors(form, error)
            else:
                messages.success(request, "Subscription saved.")
                return redirect("campaigns:subscription_detail", pk=subscription.pk)
        return self.render_page(request, subscription, form=form, filters=filters, status=400)
