"""Version 1 of the API: every app's routes under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("leads.api.urls")),
    path("", include("integrations.api.webhooks")),
]
urlpatterns += [path("", include("campaigns.api.urls"))]
urlpatterns += [path("", include("integrations.api.connections"))]
urlpatterns += [path("", include("billing.api.urls"))]
urlpatterns += [path("", include("messaging.api.urls"))]
urlpatterns += [path("", include("support.api.views"))]
urlpatterns += [path("", include("analytics.api.urls"))]
