from __future__ import annotations

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts.constants import Role
from leadflow.api.viewsets import OrganizationScopedViewSet

from ..invoices import invoice_pdf
from ..models import Invoice, Subscription, WalletTopUp
from ..topups import top_up_start
from .serializers import InvoiceSerializer, SubscriptionSerializer, WalletTopUpSerializer


class CurrentSubscriptionViewSet(OrganizationScopedViewSet):
    """The organization's subscription: plan, status, trial and grace dates."""

    serializer_class = SubscriptionSerializer
    filter_backends = []
    pagination_class = None
    read_role = Role.ADMIN
    write_scope = None

    @extend_schema(responses=SubscriptionSerializer)
    def list(self, request):
        subscription = Subscription.objects.select_related("plan", "pending_plan").first()
        if subscription is None:
            raise NotFound("This organization has no subscription yet.")
        return Response(SubscriptionSerializer(subscription).data)


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    queryset = Invoice.objects
    serializer_class = InvoiceSerializer
    read_role = Role.ADMIN
    filterset_fields = ["status", "currency"]
    ordering_fields = ["issued_at", "sequence"]

    def safely_get_queryset(self, queryset):
        return queryset.prefetch_related("lines")

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(description="The invoice as a PDF")})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        invoice = self.get_object()
        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response


class WalletTopUpViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, OrganizationScopedViewSet
):
    """Top-ups of buyers' wallets. Creating one opens a checkout (``checkout_url``, or Razorpay's
    ``checkout_options``); the wallet is credited when the provider confirms the payment."""

    queryset = WalletTopUp.objects
    serializer_class = WalletTopUpSerializer
    read_role = Role.MANAGER
    write_role = Role.MANAGER
    filterset_fields = ["buyer", "status", "kind"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("buyer")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        top_up = top_up_start(
            buyer=serializer.validated_data["buyer"],
            amount=serializer.validated_data["amount"],
            save_method=serializer.validated_data.get("save_method", False),
            actor=request.user if request.user.is_authenticated else None,
            request=request,
            success_url_for=lambda t: request.build_absolute_uri(reverse("billing:top_up", args=[t.pk])),
            cancel_url=request.build_absolute_uri(reverse("billing:wallets")),
        )
        data = self.get_serializer(top_up).data
        if data["checkout_url"].startswith("/"):
            data["checkout_url"] = request.build_absolute_uri(data["checkout_url"])
        return Response(data, status=status.HTTP_201_CREATED)
