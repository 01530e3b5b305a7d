from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("onboarding/", views.OnboardingDetailsView.as_view(), name="onboarding"),
    path("onboarding/plan/", views.OnboardingPlanView.as_view(), name="onboarding_plan"),
    path("organizations/<int:organization_id>/switch/", views.organization_switch, name="organization_switch"),
    path("invitations/<str:token>/", views.InvitationAcceptView.as_view(), name="invitation_accept"),
]

settings_urlpatterns = [
    path("", views.ProfileView.as_view(), name="profile"),
    path("organization/", views.OrganizationSettingsView.as_view(), name="organization"),
    path("team/", views.TeamView.as_view(), name="team"),
    path("team/members/<int:membership_id>/role/", views.MemberRoleView.as_view(), name="member_role"),
    path("team/members/<int:membership_id>/remove/", views.MemberRemoveView.as_view(), name="member_remove"),
    path(
        "team/invitations/<int:invitation_id>/revoke/", views.InvitationRevokeView.as_view(), name="invitation_revoke"
    ),
    path("api-keys/", views.ApiKeysView.as_view(), name="api_keys"),
    path("api-keys/<int:api_key_id>/revoke/", views.ApiKeyRevokeView.as_view(), name="api_key_revoke"),
    path("audit/", views.AuditLogView.as_view(), name="audit"),
]
