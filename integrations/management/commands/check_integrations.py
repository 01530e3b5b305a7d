"""Check every integration's health; exit 1 when any has a problem (for cron, CI or a monitoring check)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization

from ...health import integrations_health


class Command(BaseCommand):
    help = (
        "Report the health of every inbound connection and outbound webhook endpoint. --probe also calls Facebook "
        "and LinkedIn with each connection's credentials. Exits 1 when anything has a problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="Only this organization (slug)")
        parser.add_argument("--probe", action="store_true", help="Call each provider's API with the stored token")
        parser.add_argument("--json", action="store_true", dest="as_json", help="One JSON document instead of lines")

    def handle(self, *args, organization=None, probe=False, as_json=False, **options):
        target = None
        if organization:
            target = Organization.objects.filter(slug=organization).first()
            if target is None:
                raise CommandError(f"No organization with the slug {organization!r}.")
        reports = integrations_health(organization=target, probe=probe)
        problems = [report for report in reports if not report.ok]
        if as_json:
            self.stdout.write(_as_json(reports))
        else:
            for report in reports:
                self._write(report, verbosity=options["verbosity"])
            summary = f"{len(reports)} checked, {len(problems)} with problems, "
            summary += f"{sum(1 for report in reports if report.warnings)} with warnings."
            self.stdout.write((self.style.ERROR if problems else self.style.SUCCESS)(summary))
        if problems:
            raise CommandError(f"{len(problems)} integration(s) need attention.", returncode=1)

    def _write(self, report, *, verbosity: int) -> None:
        if report.ok and not report.warnings and verbosity < 2:
            return
        mark = "PROBLEM" if report.problems else "warning" if report.warnings else "ok"
        line = f"[{mark}] {report.organization}: {report.subject} ({report.state})"
        style = self.style.ERROR if report.problems else self.style.WARNING if report.warnings else str
        self.stdout.write(style(line))
        for message in [*report.problems, *report.warnings]:
            self.stdout.write(f"    {message}")
        if report.probe:
            self.stdout.write(f"    probe: {report.probe}")


def _as_json(reports) -> str:
    return json.dumps(
        [
            {
                "organization": report.organization,
                "subject": report.subject,
                "state": report.state,
                "ok": report.ok,
                "problems": report.problems,
                "warnings": report.warnings,
                "probe": report.probe,
            }
            for report in reports
        ],
        indent=2,
    )
