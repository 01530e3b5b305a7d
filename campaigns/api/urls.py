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

urlpatterns = router.urls
