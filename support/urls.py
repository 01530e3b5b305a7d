from django.urls import path

from . import views
from .constants import TicketStatus

app_name = "support"

urlpatterns = [
    path("", views.TicketListView.as_view(), name="list"),
    path("new/", views.TicketCreateView.as_view(), name="new"),
    path("<int:pk>/", views.TicketDetailView.as_view(), name="detail"),
    path("<int:pk>/thread/", views.TicketThreadView.as_view(), name="thread"),
    path("<int:pk>/close/", views.TicketStatusView.as_view(status=TicketStatus.CLOSED), name="close"),
    path("<int:pk>/reopen/", views.TicketStatusView.as_view(status=TicketStatus.OPEN), name="reopen"),
]
