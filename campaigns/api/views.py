from __future__ import annotations

from django import forms
from django.db.models import Count, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.constants import ApiKeyScope, Role
from accounts.models import ApiKey
from leadflow.api.viewsets import OrganizationModelViewSet, OrganizationScopedViewSet

from .. import selectors
from ..intake import supplier_for_api_key
from ..models import (
    Buyer,
    BuyerInvite,
    BuyerSubscription,
    Campaign,
    Category,
    DeliveryMethod,
    LeadDistribution,
    LeadReturn,
    LeadSale,
    SaleDelivery,
    Supplier,
    WalletEntry,
)
from ..services import catalog, deliveries, portal, redistribution, returns, wallets
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

    @extend_schema(request=None, responses=s.RedistributeResultSerializer)
    @action(detail=True, methods=["post"])
    def redistribute(self, request, pk=None):
        """Offer the campaign's unsold leads again now (up to its rounds per lead)."""
        counts = redistribution.campaign_redistribute_unsold(
            campaign=self.get_object(), actor=self.actor(), request=request
        )
        return Response(s.RedistributeResultSerializer(counts).data)


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
    action_roles = {"create_key": Role.ADMIN}
    filterset_fields = ["is_active"]
    search_fields = ["name", "email"]

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("campaigns")

    def save_with_service(self, instance, data):
        campaigns = data.pop("campaigns", None)
        return catalog.supplier_save(
            supplier=instance, data=data, campaigns=campaigns, actor=self.actor(), request=self.request
        )

    @extend_schema(request=s.SupplierKeyCreateSerializer, responses={201: s.SupplierKeySerializer})
    @action(detail=True, methods=["post"], url_path="create-key")
    def create_key(self, request, pk=None):
        """An ingest key for this supplier (admins): it posts only to the supplier's campaigns. The key is in this
        response and never again; revoke it at `/api/v1/api-keys/{id}/`."""
        serializer = s.SupplierKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, raw_key = catalog.supplier_api_key_create(
            supplier=self.get_object(), actor=self.actor(), request=request, **serializer.validated_data
        )
        data = s.SupplierKeySerializer(api_key).data
        data["key"] = raw_key
        return Response(data, status=status.HTTP_201_CREATED)


class WalletEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """The wallets' ledger, newest first; filter by ``buyer``."""

    queryset = WalletEntry.objects
    serializer_class = s.WalletEntrySerializer
    read_role = Role.MANAGER
    filterset_fields = ["buyer", "kind", "lead"]
    ordering_fields = ["created_at"]

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-id")  # ledger order (see selectors.buyer_ledger)


class LeadDistributionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Each lead's outcome per campaign: sold to whom at what price, or unsold with every buyer's reason."""

    queryset = LeadDistribution.objects
    serializer_class = s.LeadDistributionSerializer
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    filterset_fields = ["lead", "campaign", "status"]
    ordering_fields = ["created_at"]

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("sales").order_by("-created_at", "-id")

    @extend_schema(request=None, responses=s.LeadDistributionSerializer)
    @action(detail=True, methods=["post"])
    def redistribute(self, request, pk=None):
        """Offer this lead again in its campaign: allowed when its last round sold to nobody or it was returned."""
        distribution = self.get_object()
        outcome = redistribution.distribution_redistribute(
            distribution=distribution, actor=request.user if request.user.is_authenticated else None, request=request
        )
        return Response(
            s.LeadDistributionSerializer(self.get_queryset().get(pk=outcome.distribution_id)).data,
            status=status.HTTP_201_CREATED,
        )


class PeriodForm(forms.Form):
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)


class SupplierStatsViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Suppliers' acceptance statistics: submitted, accepted, duplicates, rejected, sold and the payout owed,
    optionally between `since` and `until`. A supplier's own ingest key sees its own row only."""

    queryset = Supplier.objects
    serializer_class = s.SupplierStatsSerializer
    read_role = Role.MANAGER
    read_scope = ApiKeyScope.INGEST
    filter_backends: list = []

    def safely_get_queryset(self, queryset):
        if isinstance(self.request.auth, ApiKey):
            supplier = supplier_for_api_key(self.request.auth)
            if supplier is not None:
                queryset = queryset.filter(pk=supplier.id)
        return queryset.prefetch_related("campaigns").order_by("name", "id")

    def _period(self):
        period = PeriodForm(self.request.query_params)
        if not period.is_valid():
            raise ValidationError(period.errors)
        return period.cleaned_data["since"], period.cleaned_data["until"]

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "_statistics", None) is not None:
            context["statistics"] = self._statistics
        return context

    def _with_statistics(self, suppliers):
        since, until = self._period()
        self._statistics = selectors.supplier_statistics([sup.pk for sup in suppliers], since=since, until=until)

    @extend_schema(
        parameters=[
            OpenApiParameter("since", str, description="ISO date-time: count submissions from then"),
            OpenApiParameter("until", str, description="ISO date-time: count submissions before then"),
        ]
    )
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        self._with_statistics(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        supplier = self.get_object()
        self._with_statistics([supplier])
        return Response(self.get_serializer(supplier).data)


class DeliveryMethodViewSet(OrganizationModelViewSet):
    """How each buyer receives its leads: email, SMS, WhatsApp, a signed webhook or a post into its CRM. Creating a
    webhook or CRM method answers its signing secret once (`signing_secret`)."""

    queryset = DeliveryMethod.objects
    serializer_class = s.DeliveryMethodSerializer
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    filterset_fields = ["buyer", "kind", "is_active"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("webhook_endpoint", "buyer__organization").order_by("buyer_id", "id")

    def _actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        method = deliveries.delivery_method_create(
            buyer=data.pop("buyer"), actor=self._actor(), request=request, **data
        )
        body = s.DeliveryMethodSerializer(method).data
        if method.webhook_endpoint is not None:
            body["signing_secret"] = method.webhook_endpoint.secret
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("buyer", None)
        data.pop("kind", None)
        serializer.instance = deliveries.delivery_method_update(
            method=serializer.instance, actor=self._actor(), request=self.request, **data
        )

    def perform_destroy(self, instance):
        deliveries.delivery_method_delete(method=instance, actor=self._actor(), request=self.request)


class SaleDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Each sale's deliveries per method, with status, attempts and the provider's message id."""

    queryset = SaleDelivery.objects
    serializer_class = s.SaleDeliverySerializer
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    filterset_fields = ["sale", "method", "kind", "status"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("sale", "webhook_delivery").order_by("-created_at", "-id")

    @extend_schema(request=None, responses=s.SaleDeliverySerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Send a failed email, SMS or WhatsApp delivery again now."""
        delivery = deliveries.sale_delivery_retry(
            delivery=self.get_object(), actor=request.user if request.user.is_authenticated else None, request=request
        )
        return Response(s.SaleDeliverySerializer(self.get_queryset().get(pk=delivery.pk)).data)


class LeadSaleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = LeadSale.objects
    serializer_class = s.LeadSaleListSerializer
    read_role = Role.MANAGER
    filterset_fields = ["buyer", "campaign", "lead"]
    ordering_fields = ["created_at"]

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-created_at", "-id")


class LeadReturnViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """Returns of sold leads. Managers record one on a buyer's behalf (buyers use the portal) and decide them:
    approving refunds the price to the buyer's wallet and may offer the lead again."""

    queryset = LeadReturn.objects
    serializer_class = s.LeadReturnSerializer
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    filterset_fields = ["status", "buyer", "campaign", "reason"]

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-requested_at", "-id")

    def _actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    def perform_create(self, serializer):
        sale = LeadSale.objects.select_related("campaign__organization").get(pk=serializer.validated_data["sale"].pk)
        serializer.instance = returns.lead_return_request(
            sale=sale,
            reason=serializer.validated_data["reason"],
            note=serializer.validated_data.get("note", ""),
            requested_by=self._actor(),
            request=self.request,
        )

    @extend_schema(request=s.ReturnApproveSerializer, responses=s.LeadReturnSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        lead_return = self.get_object()
        serializer = s.ReturnApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        returns.lead_return_approve(
            lead_return=lead_return, actor=self._actor(), request=request, **serializer.validated_data
        )
        return Response(s.LeadReturnSerializer(self.get_queryset().get(pk=lead_return.pk)).data)

    @extend_schema(request=s.ReturnRejectSerializer, responses=s.LeadReturnSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        lead_return = self.get_object()
        serializer = s.ReturnRejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        returns.lead_return_reject(
            lead_return=lead_return, actor=self._actor(), request=request, **serializer.validated_data
        )
        return Response(s.LeadReturnSerializer(self.get_queryset().get(pk=lead_return.pk)).data)


class BuyerInviteViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """Codes people use to join the buyer portal: for one buyer, or (no buyer) to register as a new buyer."""

    queryset = BuyerInvite.objects
    serializer_class = s.BuyerInviteSerializer
    read_role = Role.MANAGER
    write_role = Role.MANAGER

    def safely_get_queryset(self, queryset):
        return queryset.order_by("-created_at", "-id")

    def _actor(self):
        return self.request.user if self.request.user.is_authenticated else None

    def perform_create(self, serializer):
        serializer.instance = portal.buyer_invite_create(
            organization=self.request.organization,
            actor=self._actor(),
            request=self.request,
            **serializer.validated_data,
        )

    @extend_schema(request=None, responses=s.BuyerInviteSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        invite = portal.buyer_invite_revoke(invite=self.get_object(), actor=self._actor(), request=request)
        return Response(s.BuyerInviteSerializer(invite).data)
