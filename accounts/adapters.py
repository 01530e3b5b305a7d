from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request):
        # People who only buy leads (buyer portal users, members of no organization) land in their portal.
        from campaigns.portal import portal_accesses

        from .models import Membership

        user = request.user
        if not Membership.objects.unscoped().filter(user=user).exists() and portal_accesses(user).exists():
            return reverse("portal:leads")
        return super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request):
        # A new account has no workspace yet: onboarding creates it (invited people arrive with ?next=).
        return reverse("onboarding")
