from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("billing/invoices", views.InvoiceViewSet, basename="invoice")
router.register("billing/wallet-top-ups", views.WalletTopUpViewSet, basename="wallet-top-up")

urlpatterns = [
    path("billing/subscription/", views.CurrentSubscriptionViewSet.as_view({"get": "list"}), name="api-subscription"),
    *router.urls,
]
