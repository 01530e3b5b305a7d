from django.urls import path

from .views import buyers, market, returns, suppliers, usage

app_name = "campaigns"

urlpatterns = [
    path("", market.CampaignListView.as_view(), name="list"),
    path("<int:pk>/", market.CampaignDetailView.as_view(), name="detail"),
    path("<int:pk>/figures/", market.CampaignFiguresView.as_view(), name="figures"),
    path("<int:pk>/status/", market.CampaignStatusView.as_view(), name="status"),
    path("<int:pk>/spend/", market.CampaignSpendView.as_view(), name="spend"),
    path("<int:pk>/redistribute/", market.CampaignRedistributeView.as_view(), name="redistribute"),
    path(
        "distributions/<int:pk>/redistribute/",
        market.DistributionRedistributeView.as_view(),
        name="distribution_redistribute",
    ),
    path("categories/", market.CategoryListView.as_view(), name="categories"),
    path("categories/<int:pk>/", market.CategoryDetailView.as_view(), name="category_detail"),
    path("subscriptions/", market.SubscriptionCreateView.as_view(), name="subscription_create"),
    path("subscriptions/<int:pk>/", market.SubscriptionDetailView.as_view(), name="subscription_detail"),
    path("buyers/", buyers.BuyerListView.as_view(), name="buyers"),
    path("buyers/invites/", buyers.BuyerInviteCreateView.as_view(), name="invite_create"),
    path("buyers/<int:pk>/", buyers.BuyerDetailView.as_view(), name="buyer_detail"),
    path("buyers/<int:pk>/credit/", buyers.WalletCreditView.as_view(), name="wallet_credit"),
    path("buyers/<int:pk>/adjust/", buyers.WalletAdjustView.as_view(), name="wallet_adjust"),
    path("buyers/<int:pk>/delivery-methods/", buyers.DeliveryMethodCreateView.as_view(), name="method_create"),
    path("buyers/<int:pk>/invites/", buyers.BuyerInviteCreateView.as_view(), name="buyer_invite_create"),
    path("delivery-methods/<int:pk>/", buyers.DeliveryMethodActionView.as_view(), name="method_action"),
    path("deliveries/<int:pk>/retry/", buyers.SaleDeliveryRetryView.as_view(), name="delivery_retry"),
    path("invites/<int:pk>/revoke/", buyers.BuyerInviteRevokeView.as_view(), name="invite_revoke"),
    path("portal-users/<int:pk>/remove/", buyers.PortalUserRemoveView.as_view(), name="portal_user_remove"),
    path("suppliers/", suppliers.SupplierListView.as_view(), name="suppliers"),
    path("suppliers/<int:pk>/", suppliers.SupplierDetailView.as_view(), name="supplier_detail"),
    path("suppliers/<int:pk>/keys/", suppliers.SupplierKeyCreateView.as_view(), name="supplier_key_create"),
    path("supplier-keys/<int:pk>/revoke/", suppliers.SupplierKeyRevokeView.as_view(), name="supplier_key_revoke"),
    path("returns/", returns.ReturnQueueView.as_view(), name="returns"),
    path("returns/<int:pk>/decide/", returns.ReturnDecideView.as_view(), name="return_decide"),
    path("usage/", usage.UsageView.as_view(), name="usage"),
]
