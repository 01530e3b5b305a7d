"""The operator console. Platform staff see every organization, so each admin view runs in the operator scope."""

from functools import wraps

from django.contrib import admin
from django.urls import path, reverse

from leadflow.tenancy.context import operator_scope


class OperatorAdminSite(admin.AdminSite):
    site_header = "LeadFlow operator console"
    site_title = "LeadFlow operators"
    index_title = "Platform administration"

    def admin_view(self, view, cacheable=False):
        protected = super().admin_view(view, cacheable)

        @wraps(view)
        def in_operator_scope(request, *args, **kwargs):
            with operator_scope():
                response = protected(request, *args, **kwargs)
                # Admin pages are lazy TemplateResponses: render them while the scope is still set.
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
                return response

        return in_operator_scope

    # Operations: pages that are not one model's list --------------------------------------------------------------

    def get_urls(self):
        from leadflow.operations import admin_views

        return [
            path("operations/health/", self.admin_view(admin_views.system_health_view), name="system_health"),
            path(
                "operations/campaigns/",
                self.admin_view(admin_views.campaign_monitoring_view),
                name="campaign_monitoring",
            ),
            *super().get_urls(),
        ]

    def get_app_list(self, request, app_label=None):
        """The model apps, with an "Operations" section on top linking the pages above (index and sidebar)."""
        app_list = super().get_app_list(request, app_label)
        if app_label is None and request.user.is_active and request.user.is_staff:
            health = reverse("admin:system_health", current_app=self.name)
            operations = {
                "name": "Operations",
                "app_label": "operations",
                "app_url": health,
                "has_module_perms": True,
                "models": [
                    {"name": "System health", "object_name": "SystemHealth", "admin_url": health, "view_only": True},
                    {
                        "name": "Campaign monitoring",
                        "object_name": "CampaignMonitoring",
                        "admin_url": reverse("admin:campaign_monitoring", current_app=self.name),
                        "view_only": True,
                    },
                ],
            }
            app_list = [operations, *app_list]
        return app_list
