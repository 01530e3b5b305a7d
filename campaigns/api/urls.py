from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("categories", views.CategoryViewSet, basename="category")
router.register("campaigns", views.CampaignViewSet, basename="campaign")
router.register("buyers", views.BuyerViewSet, basename="buyer")
router.register("buyer-subscriptions", views.BuyerSubscriptionViewSet, basename="buyer-subscription")
router.register("suppliers", views.SupplierViewSet, basename="supplier")
router.register("wallet-entries", views.WalletEntryViewSet, basename="wallet-entry")
router.register("lead-distributions", views.LeadDistributionViewSet, basename="lead-distribution")
router.register("lead-sales", views.LeadSaleViewSet, basename="lead-sale")
router.register("supplier-stats", views.SupplierStatsViewSet, basename="supplier-stats")
router.register("delivery-methods", views.DeliveryMethodViewSet, basename="delivery-method")
router.register("sale-deliveries", views.SaleDeliveryViewSet, basename="sale-delivery")
router.register("lead-returns", views.LeadReturnViewSet, basename="lead-return")
router.register("buyer-invites", views.BuyerInviteViewSet, basename="buyer-invite")

urlpatterns = router.urls
