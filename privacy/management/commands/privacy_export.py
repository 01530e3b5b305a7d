"""Write everything an organization holds about a person as JSON (a data subject access request)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from leadflow.exceptions import ServiceError

from ...services import person_export
from ...sources import as_json
from ._person import add_person_arguments, organization_named


class Command(BaseCommand):
    help = "Export everything an organization holds about a person (by email and/or phone) as JSON; audited."

    def add_arguments(self, parser):
        add_person_arguments(parser)
        parser.add_argument("--output", help="Write to this file instead of standard output")

    def handle(self, *args, org, email, phone, output=None, **options):
        organization = organization_named(org)
        try:
            document = person_export(organization=organization, email=email, phone=phone)
        except ServiceError as error:
            raise CommandError(error.message) from error
        text = as_json(document)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
            rows = sum(len(rows) for rows in document["sources"].values())
            self.stderr.write(self.style.SUCCESS(f"Wrote {rows} row(s) about the person to {output}."))
        else:
            self.stdout.write(text)
