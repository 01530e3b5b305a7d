from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import Organization
from leads.constants import SubmissionStatus
from leads.intake.pipeline import submissions_reprocess


def _since(value: str):
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since {value!r}: use a date (2026-11-01) or an ISO date-time.")
        moment = timezone.datetime.combine(day, timezone.datetime.min.time())
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Run stored inbound submissions through the intake pipeline again (after a failure or a mapping fix)."

    def add_arguments(self, parser):
        replayable = [SubmissionStatus.FAILED, SubmissionStatus.REJECTED, SubmissionStatus.RECEIVED]
        parser.add_argument("--status", choices=replayable, default=SubmissionStatus.FAILED)
        parser.add_argument("--since", help="Only submissions received at or after this date or date-time")
        parser.add_argument("--organization", help="Only this organization (slug)")
        parser.add_argument("--limit", type=int)

    def handle(self, *args, **options):
        organization = None
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization with the slug {options['organization']!r}.")
        since = _since(options["since"]) if options["since"] else None
        tally: dict[str, int] = {}
        for outcome in submissions_reprocess(
            status=options["status"], since=since, organization=organization, limit=options["limit"]
        ):
            tally[outcome.status] = tally.get(outcome.status, 0) + 1
            if options["verbosity"] > 1:
                self.stdout.write(f"submission {outcome.submission.pk}: {outcome.status}")
        total = sum(tally.values())
        summary = ", ".join(f"{count} {status}" for status, count in sorted(tally.items())) or "nothing to do"
        self.stdout.write(self.style.SUCCESS(f"Reprocessed {total} submission(s): {summary}."))
