"""What every page needs to draw the layout: the workspace, the switcher and the navigation."""

from django.conf import settings


def workspace(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"google_login_enabled": bool(settings.GOOGLE_CLIENT_ID and settings.GOOGLE_CLIENT_SECRET)}
    from accounts.selectors import user_memberships
    from leadflow.navigation import navigation_for

    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
        "switchable_memberships": user_memberships(user=user),
        "navigation": navigation_for(request),
        "google_login_enabled": bool(settings.GOOGLE_CLIENT_ID and settings.GOOGLE_CLIENT_SECRET),
    }
