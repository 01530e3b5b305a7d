"""Apply every organization's retention policy (beat runs it nightly); --dry-run only counts."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...services import retention_apply_all
from ._person import organization_named


class Command(BaseCommand):
    help = "Delete old raw payloads and webhook logs and anonymize old closed leads, per each organization's policy."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug)")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change, change nothing")

    def handle(self, *args, org=None, dry_run=False, **options):
        organizations = [organization_named(org)] if org else None
        results = retention_apply_all(dry_run=dry_run, organizations=organizations)
        verb = "would change" if dry_run else "changed"
        if not results:
            self.stdout.write("No organization has a retention policy.")
        for organization, counts in results.items():
            details = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items())
            self.stdout.write(f"{organization.slug}: {verb} {details}")
        total = sum(sum(counts.values()) for counts in results.values())
        self.stdout.write(self.style.SUCCESS(f"{'Dry run: ' if dry_run else ''}{total} row(s) {verb} in all."))
