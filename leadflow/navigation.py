"""The main navigation. Each section appears once its app serves the named page, so the menu never links to
a page that does not exist; later issues add Leads, Inbox, Campaigns and Integrations by adding those URLs."""

from django.urls import NoReverseMatch, reverse

from accounts.constants import Role

# Sections whose item shows a live count (fetched with htmx, refreshed when the websocket says it changed).
BADGES = {"messaging:inbox": "messaging:badge"}

SECTIONS = [
    # (label, url name, least role, icon)
    ("Dashboard", "dashboard", Role.VIEWER, "home"),
    ("Leads", "leads:list", Role.VIEWER, "users"),
    ("Inbox", "messaging:inbox", Role.AGENT, "inbox"),
    ("Campaigns", "campaigns:list", Role.MANAGER, "megaphone"),
    ("Analytics", "analytics:home", Role.MANAGER, "chart"),
    ("Wallets", "billing:wallets", Role.MANAGER, "wallet"),
    ("Integrations", "integrations:list", Role.ADMIN, "plug"),
    ("Billing", "billing:overview", Role.ADMIN, "card"),
    ("Support", "support:list", Role.VIEWER, "lifebuoy"),
    ("Settings", "settings:profile", Role.VIEWER, "cog"),
]


def navigation_for(request) -> list[dict]:
    membership = getattr(request, "membership", None)
    if membership is None:
        return []
    current = request.path
    items = []
    for label, url_name, role, icon in SECTIONS:
        if not membership.has_role(role):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        section_root = url if url_name != "settings:profile" else "/settings/"
        badge = reverse(BADGES[url_name]) if url_name in BADGES else ""
        items.append({"label": label, "url": url, "icon": icon, "root": section_root, "badge_url": badge})
    # One active section: the deepest whose root the page is under (/billing/wallets/ is Wallets, not Billing).
    matching = [item for item in items if current.startswith(item["root"])]
    deepest = max(matching, key=lambda item: len(item["root"]), default=None)
    for item in items:
        item["active"] = item is deepest
    return items
