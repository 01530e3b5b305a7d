"""Version 1 of the API: every app's routes under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("leads.api.urls")),
]
