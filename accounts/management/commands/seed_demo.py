import os

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.constants import Role
from accounts.models import Invitation, Membership, Organization, User
from accounts.services import invitation_create, organization_create
from billing.models import Plan
from billing.services import plans_seed
from leads.demo import demo_leads_seed

DEMO_SLUG = "demo-realty"
TEAMMATES = [
    ("maya.manager@leadflow.local", "Maya", "Rao", Role.MANAGER),
    ("arjun.agent@leadflow.local", "Arjun", "Mehta", Role.AGENT),
    ("vera.viewer@leadflow.local", "Vera", "Singh", Role.VIEWER),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo workspace; safe to run any number of times."

    @transaction.atomic
    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "leadflow-demo")
        plans_seed()
        owner, _ = User.objects.get_or_create(
            email="demo@leadflow.local", defaults={"first_name": "Dev", "last_name": "Demo"}
        )
        owner.set_password(password)
        owner.save()
        organization = Organization.objects.filter(slug=DEMO_SLUG).first()
        if organization is None:
            organization = organization_create(
                owner=owner,
                name="Demo Realty",
                plan=Plan.objects.get(code="growth"),
                country="IN",
                currency="INR",
                timezone="Asia/Kolkata",
                default_phone_region="IN",
                industry="real_estate",
                website="https://demo-realty.example",
            )
            if organization.slug != DEMO_SLUG:
                organization.slug = DEMO_SLUG
                organization.save(update_fields=["slug"])
        owner_membership = Membership.objects.unscoped().get(organization=organization, user=owner)
        for email, first, last, role in TEAMMATES:
            user, _ = User.objects.get_or_create(email=email, defaults={"first_name": first, "last_name": last})
            user.set_password(password)
            if user.active_organization_id is None:
                user.active_organization = organization
            user.save()
            Membership.objects.unscoped().get_or_create(organization=organization, user=user, defaults={"role": role})
        if (
            not Invitation.objects.unscoped()
            .filter(organization=organization, email="new.hire@leadflow.local")
            .exists()
        ):
            invitation_create(
                organization=organization, email="new.hire@leadflow.local", role=Role.AGENT, inviter=owner_membership
            )
        leads = demo_leads_seed(organization=organization)
        if leads:
            self.stdout.write(f"Added {leads} demo leads.")
        self.stdout.write(self.style.SUCCESS(f"Demo workspace ready: log in as demo@leadflow.local / {password}"))
