from __future__ import annotations

from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.constants import Role
from leadflow.api.viewsets import OrganizationModelViewSet, OrganizationScopedViewSet

from .. import selectors
from ..models import Buyer, BuyerSubscription, Campaign, Category, LeadDistribution, Supplier, WalletEntry
from ..services import catalog, wallets
from . import serializers as s


class CatalogViewSet(OrganizationModelViewSet):
    """Create, update and delete through the catalog services, so the API, the admin and commands audit alike."""

    read_role = Role.VIEWER
    write_role = Role.MANAGER

    def actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    def save_with_service(self, instance, data):
        raise NotImplementedError

    def perform_create(self, serializer):
        instance = serializer.Meta.model(organization=self.request.organization)
        serializer.instance = self.save_with_service(instance, dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = self.save_with_service(serializer.instance, dict(serializer.validated_data))

    def perform_destroy(self, instance):
        catalog.catalog_delete(instance=instance, actor=self.actor(), request=self.request)


class CategoryViewSet(CatalogViewSet):
    """Verticals and the custom fields their leads carry."""

    queryset = Category.objects
    serializer_class = s.CategorySerializer
    search_fields = ["name"]

    def save_with_service(self, instance, data):
        return catalog.category_save(category=instance, data=data, actor=self.actor(), request=self.request)


class CampaignViewSet(CatalogViewSet):
    queryset = Campaign.objects
    serializer_class = s.CampaignSerializer
    filterset_fields = ["category", "status", "distribution_logic", "ad_channel"]
    search_fields = ["name"]

    def safely_get_queryset(self, queryset):
        # Meta.ordering is not applied to aggregate queries: order explicitly for stable pages.
        return queryset.annotate(lead_count=Count("distributions", filter=Q(distributions__round=1))).order_by(
            "name", "id"
        )

    def save_with_service(self, instance, data):
        return catalog.campaign_save(campaign=instance, data=data, actor=self.actor(), request=self.request)

    def _fresh(self, campaign):
        return Response(s.CampaignSerializer(self.get_queryset().get(pk=campaign.pk)).data)

    @extend_schema(request=s.CampaignPauseSerializer, responses=s.CampaignSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        campaign = self.get_object()
        serializer = s.CampaignPauseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        catalog.campaign_pause(
            campaign=campaign, reason=serializer.validated_data["reason"], actor=self.actor(), request=request
        )
        return self._fresh(campaign)

    @extend_schema(request=None, responses=s.CampaignSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        campaign = self.get_object()
        catalog.campaign_resume(campaign=campaign, actor=self.actor(), request=request)
        return self._fresh(campaign)

    @extend_schema(responses=s.CampaignFiguresSerializer)
    @action(detail=True, methods=["get"])
    def figures(self, request, pk=None):
        """Leads, sold, unsold (with the buyers' reasons counted), revenue and cost per lead."""
        return Response(s.CampaignFiguresSerializer(selectors.campaign_figures(self.get_object())).data)


class BuyerViewSet(CatalogViewSet):
    """Buyers and their wallets. Money moves only through the wallet actions, each one a ledger entry."""

    queryset = Buyer.objects
    serializer_class = s.BuyerSerializer
    read_role = Role.MANAGER
    action_roles = {"adjust": Role.ADMIN}
    filterset_fields = ["status"]
    search_fields = ["name", "company", "email"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("wallet")

    def save_with_service(self, instance, data):
        return catalog.buyer_save(buyer=instance, data=data, actor=self.actor(), request=self.request)

    @extend_schema(request=s.WalletCreditSerializer, responses={201: s.WalletEntrySerializer})
    @action(detail=True, methods=["post"])
    def credit(self, request, pk=None):
        """Top up the buyer's wallet (managers and above)."""
        buyer = self.get_object()
        serializer = s.WalletCreditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = wallets.wallet_credit(buyer=buyer, actor=self.actor(), request=request, **serializer.validated_data)
        return Response(s.WalletEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.WalletAdjustSerializer, responses={201: s.WalletEntrySerializer})
    @action(detail=True, methods=["post"])
    def adjust(self, request, pk=None):
        """Correct the wallet by hand, either way, with a note (admins and above)."""
        buyer = self.get_object()
        serializer = s.WalletAdjustSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = wallets.wallet_adjust(buyer=buyer, actor=self.actor(), request=request, **serializer.validated_data)
        return Response(s.WalletEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class BuyerSubscriptionViewSet(CatalogViewSet):
    queryset = BuyerSubscription.objects
    serializer_class = s.BuyerSubscriptionSerializer
    read_role = Role.MANAGER
    filterset_fields = ["buyer", "campaign", "is_active"]

    def save_with_service(self, instance, data):
        return catalog.subscription_save(subscription=instance, data=data, actor=self.actor(), request=self.request)


class SupplierViewSet(CatalogViewSet):
    queryset = Supplier.objects
    serializer_class = s.SupplierSerializer
    read_role = Role.MANAGER
    filterset_fields = ["is_active"]
    search_fields = ["name", "email"]

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("campaigns")

    def save_with_service(self, instance, data):
        campaigns = data.pop("campaigns", None)
        return catalog.supplier_save(
            supplier=instance, data=data, campaigns=campaigns, actor=self.actor(), request=self.request
        )


class WalletEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """The wallets' ledger, newest first; filter by ``buyer``."""

    queryset = WalletEntry.objects
    serializer_class = s.WalletEntrySerializer
    read_role = Role.MANAGER
    filterset_fields = ["buyer", "kind", "lead"]
    ordering_fields = ["created_at"]

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-created_at", "-id")


class LeadDistributionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Each lead's outcome per campaign: sold to whom at what price, or unsold with every buyer's reason."""

    queryset = LeadDistribution.objects
    serializer_class = s.LeadDistributionSerializer
    read_role = Role.MANAGER
    filterset_fields = ["lead", "campaign", "status"]
    ordering_fields = ["created_at"]

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("sales").order_by("-created_at", "-id")
