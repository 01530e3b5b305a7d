from django.core.management.base import BaseCommand

from billing.services import plans_seed


class Command(BaseCommand):
    help = "Create or update the subscription plans (idempotent)."

    def handle(self, *args, **options):
        created, updated = plans_seed()
        self.stdout.write(self.style.SUCCESS(f"Plans ready: {created} created, {updated} updated."))
