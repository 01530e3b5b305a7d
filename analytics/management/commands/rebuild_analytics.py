from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from analytics.services import rollups_rebuild


class Command(BaseCommand):
    help = "Rebuild the analytics rollups from the source tables (every organization, or one)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organization (slug)")

    def handle(self, *args, **options):
        organizations = Organization.objects.order_by("pk")
        if options["organization"]:
            organizations = organizations.filter(slug=options["organization"])
            if not organizations.exists():
                raise CommandError(f"No organization with the slug {options['organization']!r}.")
        for organization in organizations:
            result = rollups_rebuild(organization=organization)
            timings = ", ".join(f"{cube} {ms} ms" for cube, ms in result["ms_by_cube"].items())
            self.stdout.write(f"{organization.slug}: rebuilt in {result['ms']} ms ({timings})")
        self.stdout.write(self.style.SUCCESS("Analytics rollups rebuilt."))
