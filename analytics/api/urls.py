from django.urls import path

from .views import REPORT_VIEWS

urlpatterns = [
    path(f"analytics/{name}/", view.as_view(), name=f"analytics-{name}") for name, view in REPORT_VIEWS.items()
]
