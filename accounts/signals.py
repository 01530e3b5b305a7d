"""Security-relevant auth events go to the audit log."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import ApiKey, Organization, User
from .services import api_keys_forget, audit_record


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    audit_record(organization=user.active_organization, action="auth.login", actor=user, target=user, request=request)


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(
            organization=user.active_organization, action="auth.logout", actor=user, target=user, request=request
        )


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    email = (credentials.get("email") or credentials.get("username") or "")[:254]
    user = User.objects.filter(email__iexact=email).select_related("active_organization").first() if email else None
    audit_record(
        organization=user.active_organization if user else None,
        action="auth.login_failed",
        actor=None,
        target=user,
        changes={"email": email},
        request=request,
    )


def name_site_after_leadflow(sender, using="default", **kwargs):
    """allauth signs its emails with the site's name: make it LeadFlow at SITE_URL, not example.com."""
    from django.contrib.sites.models import Site

    domain = urlsplit(settings.SITE_URL).netloc or "localhost:8000"
    Site.objects.using(using).update_or_create(pk=settings.SITE_ID, defaults={"domain": domain, "name": "LeadFlow"})
    Site.objects.clear_cache()


@receiver(post_save, sender=ApiKey)
@receiver(post_save, sender=Organization)
def forget_cached_api_keys(sender, **kwargs):
    """A key or organization saved anywhere (services, the admin) is read afresh by this process's next request."""
    api_keys_forget()
