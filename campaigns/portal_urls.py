"""The buyer portal, at /portal/: its own pages, its own layout, none of the CRM's."""

from django.urls import path

from .views import portal

app_name = "portal"

urlpatterns = [
    path("", portal.PortalLeadsView.as_view(), name="leads"),
    path("leads/<int:pk>/", portal.PortalLeadDetailView.as_view(), name="lead_detail"),
    path("wallet/", portal.PortalWalletView.as_view(), name="wallet"),
    path("returns/", portal.PortalReturnsView.as_view(), name="returns"),
    path("switch/", portal.PortalSwitchView.as_view(), name="switch"),
    path("join/", portal.PortalJoinView.as_view(), name="join"),
]
