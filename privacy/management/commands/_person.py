"""What the privacy commands share: the organization and the person they name."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts.models import Organization


def add_person_arguments(parser) -> None:
    parser.add_argument("--org", required=True, help="The organization's slug")
    parser.add_argument("--email", default="", help="The person's email address")
    parser.add_argument("--phone", default="", help="The person's phone number (read in the organization's region)")


def organization_named(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise CommandError(f"No organization with the slug {slug!r}.")
    return organization
