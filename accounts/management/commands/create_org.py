from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.services import organization_create
from billing.models import Plan
from leadflow.exceptions import ServiceError


class Command(BaseCommand):
    help = "Create an organization with an owner (created when the address has no account yet) on a trial plan."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--password", help="Password for a new owner account; without it they sign in by code")
        parser.add_argument("--plan", default="starter", help="Plan code for the trial (see seed_plans)")
        parser.add_argument("--country", default="IN")
        parser.add_argument("--currency", default="INR")
        parser.add_argument("--timezone", default="Asia/Kolkata")

    @transaction.atomic
    def handle(self, *args, **options):
        plan = Plan.objects.filter(code=options["plan"]).first()
        if plan is None:
            raise CommandError(f"No plan “{options['plan']}”: run `manage.py seed_plans` or pick another --plan.")
        email = options["owner_email"].strip().lower()
        owner = User.objects.filter(email__iexact=email).first()
        if owner is None:
            owner = User.objects.create_user(email=email, password=options["password"])
            if options["password"]:
                self.stdout.write(f"Created user {email}.")
            else:
                self.stdout.write(f"Created user {email} without a password: they sign in with an emailed code.")
        try:
            organization = organization_create(
                owner=owner,
                name=options["name"],
                plan=plan,
                country=options["country"],
                currency=options["currency"],
                timezone=options["timezone"],
            )
        except ServiceError as error:
            raise CommandError(error.message) from error
        except ValidationError as error:
            raise CommandError(f"Invalid organization details: {'; '.join(error.messages)}") from error
        self.stdout.write(
            self.style.SUCCESS(f"Organization “{organization.name}” created with slug {organization.slug}.")
        )
