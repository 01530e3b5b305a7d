from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.AnalyticsHomeView.as_view(), name="home"),
    path("<slug:name>/", views.ReportView.as_view(), name="report"),
    path("<slug:name>/csv/", views.ReportCsvView.as_view(), name="report_csv"),
]
