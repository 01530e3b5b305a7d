from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.urls import settings_urlpatterns
from billing.urls import pricing_urlpatterns

from . import health, metrics

urlpatterns = [
    path("healthz/", health.healthz, name="healthz"),
    path("readyz/", health.readyz, name="readyz"),
    # Prometheus scrapes /metrics (no trailing slash by convention); both spellings answer.
    re_path(r"^metrics/?$", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("leadflow.api.urls")),
    # Providers post leads here (Meta, Google Ads, Zapier …): outside /api/v1/, no API key, each signs its own way.
    path("api/webhooks/", include("integrations.api.inbound")),
    # Billing: Razorpay posts to api/webhooks/razorpay/; Stripe to dj-stripe's stripe/webhook/<uuid>/.
    path("api/webhooks/", include("billing.api.webhooks")),
    # Conversations: Twilio (SMS, WhatsApp), Meta's WhatsApp Cloud API and email (anymail) post here.
    path("api/webhooks/", include("messaging.webhooks")),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("pricing/", include(pricing_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("settings/privacy/", include("privacy.urls")),
    path("settings/", include((settings_urlpatterns, "settings"))),
    path("billing/", include("billing.urls")),
    path("leads/", include("leads.urls")),
    path("integrations/", include("integrations.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("portal/", include("campaigns.portal_urls")),
    path("support/", include("support.urls")),
    path("analytics/", include("analytics.urls")),
    path("", include("messaging.urls")),
    path("", include("accounts.urls")),
]
