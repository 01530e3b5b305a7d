from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Organization
from leads.services.rescoring import leads_rescore


class Command(BaseCommand):
    help = "Recompute lead scores (after changing scoring rules); only changed leads are written."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organization (slug)")
        parser.add_argument("--days", type=int, help="Only leads received in the last N days")

    def handle(self, *args, **options):
        organization = None
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization with the slug {options['organization']!r}.")
        since = timezone.now() - timezone.timedelta(days=options["days"]) if options["days"] else None
        changed = leads_rescore(organization=organization, since=since)
        self.stdout.write(self.style.SUCCESS(f"Rescored leads: {changed} changed."))
