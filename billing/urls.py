from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.BillingOverviewView.as_view(), name="overview"),
    path("plan/", views.ChangePlanView.as_view(), name="change_plan"),
]
