"""Believable leads for the demo workspace, through the real intake pipeline (so they are scored and assigned)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership
from leadflow.tenancy.context import organization_scope

from .constants import LeadSource
from .intake.pipeline import lead_intake
from .models import Lead, PipelineStage
from .services.rescoring import leads_rescore

FIRST = [
    "Asha",
    "Ravi",
    "Meena",
    "Karan",
    "Priya",
    "Vikram",
    "Neha",
    "Arjun",
    "Sana",
    "Rahul",
    "Isha",
    "Dev",
    "Pooja",
    "Aman",
]
LAST = ["Verma", "Kumar", "Iyer", "Shah", "Sharma", "Reddy", "Nair", "Mehta", "Khan", "Gupta", "Das", "Joshi"]
CITIES = [
    ("Pune", "MH"),
    ("Mumbai", "MH"),
    ("Bengaluru", "KA"),
    ("Chennai", "TN"),
    ("Hyderabad", "Telangana"),
    ("Delhi", "DL"),
]
SOURCES = [
    LeadSource.FACEBOOK,
    LeadSource.GOOGLE_ADS,
    LeadSource.FORM,
    LeadSource.API,
    LeadSource.LINKEDIN,
    LeadSource.CSV,
]


def demo_leads_seed(*, organization, count: int = 40) -> int:
    """Create the demo leads once (identified by their external ids); returns how many were created."""
    rng = random.Random(42)  # noqa: S311 - the same demo every time, nothing secret
    created = 0
    with organization_scope(organization):
        if Lead.objects.filter(external_id="demo-0").exists():
            return 0
        # Spread the demo over the pipeline and the team, as a workspace a few weeks in would be.
        stages = [
            stage
            for stage in PipelineStage.objects.order_by("position")
            for _ in range(3 if stage.position == 0 else 1)
        ]
        workers = [m.user for m in Membership.objects.select_related("user").exclude(role=Role.VIEWER)]
        for n in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            city, state = rng.choice(CITIES)
            payload = {
                "external_id": f"demo-{n}",
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}{n}@example.com".lower(),
                "phone": f"+91 98{rng.randint(10000000, 99999999)}",
                "city": city,
                "state": state,
                "custom": {
                    "budget": rng.choice([2500000, 4500000, 8000000]),
                    "timeline": rng.choice(["this month", "3 months", "just looking"]),
                },
                "utm": {
                    "source": rng.choice(["facebook", "google", "newsletter"]),
                    "campaign": rng.choice(["pune-2bhk", "diwali-offer"]),
                },
                "consent": {"given": True, "text": "I agree to be contacted about my enquiry.", "method": "checkbox"},
            }
            outcome = lead_intake(organization=organization, source=rng.choice(SOURCES), payload=payload)
            if outcome.lead is not None:
                received = timezone.now() - timedelta(hours=rng.randint(0, 24 * 20))
                stage = rng.choice(stages)
                contacted = received + timedelta(minutes=rng.randint(2, 240)) if stage.position > 0 else None
                owner = rng.choice(workers) if stage.position > 0 and workers else None
                Lead.objects.filter(pk=outcome.lead.pk).update(
                    received_at=received, stage=stage, first_contacted_at=contacted, owner=owner, assigned_at=contacted
                )
                created += outcome.is_new
    leads_rescore(organization=organization)  # recency points follow the back-dated arrival times
    return created
