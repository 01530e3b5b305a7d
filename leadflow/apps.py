from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LeadflowConfig(AppConfig):
    default = True
    name = "leadflow"
    verbose_name = "LeadFlow platform"


class LeadFlowAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "leadflow.admin_site.OperatorAdminSite"
