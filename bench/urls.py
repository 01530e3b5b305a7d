"""LeadFlow's own URLs plus the minimal create endpoint the ingest API is compared with."""

from django.urls import include, path

from .minimal import MinimalLeadCreate

urlpatterns = [
    path("bench/minimal-lead/", MinimalLeadCreate.as_view(), name="bench-minimal-lead"),
    path("", include("leadflow.urls")),
]
