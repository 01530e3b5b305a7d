from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("usage-records", views.UsageRecordViewSet, basename="usage-record")
router.register("conversations", views.ConversationViewSet, basename="conversation")
router.register("messages", views.MessageViewSet, basename="message")
router.register("message-templates", views.MessageTemplateViewSet, basename="message-template")
router.register("template-variants", views.TemplateVariantViewSet, basename="template-variant")
router.register("automation-rules", views.AutomationRuleViewSet, basename="automation-rule")
router.register("automation-executions", views.AutomationExecutionViewSet, basename="automation-execution")
router.register("opt-outs", views.OptOutViewSet, basename="opt-out")

urlpatterns = [
    path("notifications/", views.NotificationsView.as_view(), name="notifications"),
    path("notifications/preferences/", views.NotificationPreferencesView.as_view(), name="notification-preferences"),
    path("messaging/settings/", views.MessagingSettingsView.as_view(), name="messaging-settings"),
    *router.urls,
]
