from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def get_signup_redirect_url(self, request):
        # A new account has no workspace yet: onboarding creates it (invited people arrive with ?next=).
        return reverse("onboarding")
