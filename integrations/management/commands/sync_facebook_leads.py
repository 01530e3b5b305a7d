"""Pull Facebook Lead Ads leads created since each connected page's last sync (what webhooks missed)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from accounts.models import Organization
from leadflow.tenancy.context import operator_scope

from ...services.inbound import facebook_connections_sync


class Command(BaseCommand):
    help = "Backfill Facebook Lead Ads leads for every connected page (or one organization's)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="An organization's slug; all organizations when left out")
        parser.add_argument("--since", help="ISO 8601 time to pull from, instead of each page's last sync")

    def handle(self, *args, organization=None, since=None, **options):
        since_at = None
        if since:
            since_at = parse_datetime(since)
            if since_at is None or since_at.tzinfo is None:
                raise CommandError("--since needs an ISO 8601 time with a zone, e.g. 2026-11-01T00:00:00Z")
        with operator_scope():
            target = None
            if organization:
                target = Organization.objects.filter(slug=organization).first()
                if target is None:
                    raise CommandError(f"No organization with the slug {organization!r}.")
            created = facebook_connections_sync(organization=target, since=since_at)
        self.stdout.write(self.style.SUCCESS(f"{created} new leads from Facebook."))
