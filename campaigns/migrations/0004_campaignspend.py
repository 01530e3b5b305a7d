"""Ad spend by day (``CampaignSpend``), which daily budgets are measured against. A campaign that already recorded
spend gets one row for it, dated the day it was last changed (in its organization's time zone), so the rows always
add up to ``Campaign.ad_spend``."""

import zoneinfo

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def opening_rows(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    CampaignSpend = apps.get_model("campaigns", "CampaignSpend")
    for campaign in Campaign.objects.exclude(ad_spend=0).select_related("organization").iterator():
        day = campaign.updated_at.astimezone(zoneinfo.ZoneInfo(campaign.organization.timezone)).date()
        CampaignSpend.objects.create(
            organization_id=campaign.organization_id,
            campaign=campaign,
            spent_on=day,
            amount=campaign.ad_spend,
            total_after=campaign.ad_spend,
            created_at=campaign.updated_at,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_lead_assignment_settings"),
        ("campaigns", "0003_returns_deliveries_portal_suppliers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CampaignSpend",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "spent_on",
                    models.DateField(help_text="The day the money was spent, in the organization's time zone"),
                ),
                ("amount", models.DecimalField(decimal_places=2, max_digits=14)),
                ("total_after", models.DecimalField(decimal_places=2, max_digits=14)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="spend_entries",
                        to="campaigns.campaign",
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.organization"
                    ),
                ),
            ],
            options={
                "ordering": ["-spent_on", "-id"],
                "indexes": [models.Index(fields=["campaign", "spent_on"], name="campaigns_spend_day_idx")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("amount", 0), _negated=True), name="campaigns_spend_amount_not_0"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("total_after__gte", 0)), name="campaigns_spend_total_gte_0"
                    ),
                ],
            },
        ),
        migrations.RunPython(opening_rows, migrations.RunPython.noop),
    ]
