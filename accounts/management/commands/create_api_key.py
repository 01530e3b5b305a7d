from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Organization
from accounts.services import api_key_create
from leadflow.exceptions import ServiceError


class Command(BaseCommand):
    help = "Create an API key for an organization and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug")
        parser.add_argument("--name", required=True, help="What will use the key")
        parser.add_argument("--scopes", default="read", help="Comma-separated: read, write, ingest")
        parser.add_argument("--expires-days", type=int, help="Days until the key expires (default: never)")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug “{options['org']}”.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        expires_at = timezone.now() + timedelta(days=options["expires_days"]) if options["expires_days"] else None
        try:
            api_key, raw_key = api_key_create(
                organization=organization, name=options["name"], scopes=scopes, expires_at=expires_at
            )
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"API key “{api_key.name}” for {organization.name} ({', '.join(api_key.scopes)}):")
        self.stdout.write(raw_key)
        self.stderr.write("Store it now: it is not saved and cannot be shown again.")
