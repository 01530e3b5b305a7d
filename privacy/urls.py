from django.urls import path

from . import views

app_name = "privacy"

urlpatterns = [
    path("", views.PrivacyView.as_view(), name="settings"),
    path("export/", views.PrivacyExportView.as_view(), name="export"),
    path("erase/", views.PrivacyEraseView.as_view(), name="erase"),
    path("retention/", views.RetentionPolicyView.as_view(), name="retention"),
]
