from django.urls import path

from .views import connections, hosted_forms, webhooks

app_name = "integrations"

urlpatterns = [
    # Outbound webhooks
    path("webhooks/", webhooks.WebhookEndpointListView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>/", webhooks.WebhookEndpointDetailView.as_view(), name="webhook_detail"),
    path("webhooks/<int:pk>/rotate-secret/", webhooks.WebhookRotateSecretView.as_view(), name="webhook_rotate_secret"),
    path("webhooks/<int:pk>/test/", webhooks.WebhookSendTestView.as_view(), name="webhook_test"),
    path("webhooks/<int:pk>/delete/", webhooks.WebhookDeleteView.as_view(), name="webhook_delete"),
    path(
        "webhooks/deliveries/<int:pk>/replay/",
        webhooks.WebhookDeliveryReplayView.as_view(),
        name="webhook_delivery_replay",
    ),
    path("webhooks/deliveries/<int:pk>/row/", webhooks.WebhookDeliveryRowView.as_view(), name="webhook_delivery_row"),
    # Inbound connections
    path("", connections.ConnectionListView.as_view(), name="list"),
    path("connect/facebook/", connections.FacebookConnectView.as_view(), name="connect_facebook"),
    path("connect/linkedin/", connections.LinkedInConnectView.as_view(), name="connect_linkedin"),
    path("connections/<int:pk>/", connections.ConnectionDetailView.as_view(), name="connection_detail"),
    path("connections/<int:pk>/mapping/", connections.ConnectionMappingView.as_view(), name="connection_mapping"),
    path("connections/<int:pk>/secret/", connections.ConnectionSecretView.as_view(), name="connection_secret"),
    path("connections/<int:pk>/test/", connections.ConnectionSendTestView.as_view(), name="connection_test"),
    path(
        "connections/<int:pk>/disconnect/",
        connections.ConnectionDisconnectView.as_view(),
        name="connection_disconnect",
    ),
    path("connections/<int:pk>/reconnect/", connections.ConnectionReconnectView.as_view(), name="connection_reconnect"),
    path("connections/<int:pk>/form/", connections.ConnectionHostedFormView.as_view(), name="connection_hosted_form"),
    path(
        "connections/form-category-fields/",
        connections.HostedFormCategoryFieldsView.as_view(),
        name="hosted_form_category_fields",
    ),
    path(
        "connections/<int:pk>/conversions/",
        connections.ConnectionConversionsView.as_view(),
        name="connection_conversions",
    ),
    # Hosted web forms: public, no login
    path("f/<str:token>/", hosted_forms.HostedFormView.as_view(), name="hosted_form"),
]
