"""The operator console. Platform staff see every organization, so each admin view runs in the operator scope."""

from functools import wraps

from django.contrib import admin

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
