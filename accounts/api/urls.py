from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("members", views.MemberViewSet, basename="member")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("auth/token/revoke/", views.TokenRevokeView.as_view(), name="api-token-revoke"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path(
        "organization/",
        views.CurrentOrganizationViewSet.as_view({"get": "list", "patch": "partial_update"}),
        name="api-organization",
    ),
    *router.urls,
]
