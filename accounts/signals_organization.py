"""``organization_created``: sent by ``organization_create`` once a new workspace and its owner exist, so other
apps set up what every workspace starts with (messaging's welcome automation) without accounts knowing them."""

from django.dispatch import Signal

organization_created = Signal()  # sender=Organization, organization=…
