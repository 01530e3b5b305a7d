from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.BillingOverviewView.as_view(), name="overview"),
    path("plan/", views.ChangePlanView.as_view(), name="change_plan"),
    path("subscribe/", views.SubscribeView.as_view(), name="subscribe"),
    path("cancel/", views.CancelView.as_view(), name="cancel"),
    path("portal/", views.PortalView.as_view(), name="portal"),
    path("invoices/<int:invoice_id>/pdf/", views.InvoicePdfView.as_view(), name="invoice_pdf"),
    path("checkout/<str:token>/razorpay/", views.RazorpayCheckoutView.as_view(), name="razorpay_checkout"),
    path("checkout/<str:token>/razorpay/return/", views.RazorpayReturnView.as_view(), name="razorpay_return"),
    path("checkout/<str:token>/done/", views.CheckoutDoneView.as_view(), name="checkout_done"),
    path("offline/checkout/<str:token>/", views.OfflineCheckoutView.as_view(), name="offline_checkout"),
    path("offline/top-up/<str:reference>/", views.OfflineTopUpView.as_view(), name="offline_top_up"),
    path("wallets/", views.WalletsView.as_view(), name="wallets"),
    path("wallets/<int:buyer_id>/top-up/", views.TopUpStartView.as_view(), name="top_up_start"),
    path("top-ups/<int:top_up_id>/", views.TopUpView.as_view(), name="top_up"),
    path("sign-in/<str:token>/", views.MagicLoginView.as_view(), name="magic_login"),
    path("welcome/", views.WelcomeView.as_view(), name="welcome"),
]

# The public pricing page, mounted at /pricing/ (leadflow.urls).
pricing_urlpatterns = [
    path("", views.PricingView.as_view(), name="pricing"),
    path("done/", views.PricingDoneView.as_view(), name="pricing_done"),
]
