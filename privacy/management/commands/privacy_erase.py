"""Erase a person from an organization: anonymize their leads and delete what holds their details; audited."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from leadflow.exceptions import ServiceError

from ...selectors import person_data_counts, person_target
from ...services import person_erase
from ._person import add_person_arguments, organization_named


class Command(BaseCommand):
    help = "Erase a person (by email and/or phone) from an organization, in one transaction. Asks first unless --yes."

    def add_arguments(self, parser):
        add_person_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation")

    def handle(self, *args, org, email, phone, yes=False, **options):
        organization = organization_named(org)
        try:
            target = person_target(organization=organization, email=email, phone=phone)
        except ServiceError as error:
            raise CommandError(error.message) from error
        counts = person_data_counts(target)
        for _, label, count in counts:
            self.stdout.write(f"  {label}: {count}")
        if not any(count for _, _, count in counts):
            self.stdout.write("Nothing about this person is stored.")
            return
        if not yes and input(f"Erase this person from {organization.slug}? Type “erase”: ").strip().lower() != "erase":
            raise CommandError("Not erased.")
        changed = person_erase(organization=organization, email=email, phone=phone)
        summary = ", ".join(f"{count} {key}" for key, count in changed.items() if count)
        self.stdout.write(self.style.SUCCESS(f"Erased: {summary}."))
