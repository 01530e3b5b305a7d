"""Offer unsold leads again: every campaign that redistributes (what beat does every 15 minutes), or one
campaign's unsold leads now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from campaigns.models import Campaign
from campaigns.services.redistribution import campaign_redistribute_unsold, leads_redistribute_due
from leadflow.tenancy.context import operator_scope


class Command(BaseCommand):
    help = "Redistribute unsold leads (and route submissions processed late)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organization's campaigns (its slug)")
        parser.add_argument(
            "--campaign", type=int, help="Offer this campaign's unsold leads now, whether or not it redistributes"
        )
        parser.add_argument("--limit", type=int, default=1000, help="Leads per campaign at most (1000)")

    def handle(self, *args, organization=None, campaign=None, limit=1000, **options):
        with operator_scope():
            org = None
            if organization:
                org = Organization.objects.filter(slug=organization).first()
                if org is None:
                    raise CommandError(f"No organization “{organization}”.")
            if campaign is not None:
                campaigns = Campaign.objects.unscoped().filter(pk=campaign)
                if org is not None:
                    campaigns = campaigns.filter(organization=org)
                found = campaigns.select_related("organization").first()
                if found is None:
                    raise CommandError(f"No campaign {campaign}.")
                counts = campaign_redistribute_unsold(campaign=found, limit=limit)
            else:
                counts = leads_redistribute_due(limit=limit, organization=org)
        self.stdout.write(", ".join(f"{name} {value}" for name, value in counts.items()))
