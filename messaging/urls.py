from django.urls import path

from .views import inbox, manage, notifications

app_name = "messaging"

urlpatterns = [
    path("inbox/", inbox.InboxView.as_view(), name="inbox"),
    path("inbox/list/", inbox.ConversationListView.as_view(), name="conversation_list"),
    path("inbox/badge/", inbox.UnreadBadgeView.as_view(), name="badge"),
    path("inbox/c/<int:pk>/", inbox.ThreadView.as_view(), name="thread"),
    path("inbox/c/<int:pk>/reply/", inbox.ReplyView.as_view(), name="reply"),
    path("inbox/c/<int:pk>/<str:action>/", inbox.ConversationActionView.as_view(), name="conversation_action"),
    path("inbox/templates/", manage.TemplateListView.as_view(), name="templates"),
    path("inbox/templates/new/", manage.TemplateEditView.as_view(), name="template_new"),
    path("inbox/templates/<int:pk>/", manage.TemplateEditView.as_view(), name="template_edit"),
    path("inbox/templates/<int:pk>/variants/", manage.VariantCreateView.as_view(), name="variant_new"),
    path("inbox/templates/preview/", manage.TemplatePreviewView.as_view(), name="template_preview"),
    path("inbox/templates/sync/", manage.TemplateSyncView.as_view(), name="template_sync"),
    path("inbox/automations/", manage.AutomationListView.as_view(), name="automations"),
    path("inbox/automations/new/", manage.AutomationEditView.as_view(), name="automation_new"),
    path("inbox/automations/<int:pk>/", manage.AutomationEditView.as_view(), name="automation_edit"),
    path("inbox/automations/log/", manage.ExecutionLogView.as_view(), name="executions"),
    path("inbox/settings/", manage.MessagingSettingsView.as_view(), name="settings"),
    path("inbox/sla/", manage.SlaReportView.as_view(), name="sla"),
    path("notifications/", notifications.NotificationListView.as_view(), name="notifications"),
    path("notifications/read/", notifications.MarkReadView.as_view(), name="notifications_read"),
    path("notifications/bell/", notifications.BellView.as_view(), name="bell"),
    path("notifications/preferences/", notifications.PreferencesView.as_view(), name="preferences"),
    path("m/unsubscribe/<str:token>/", notifications.UnsubscribeView.as_view(), name="unsubscribe"),
]
