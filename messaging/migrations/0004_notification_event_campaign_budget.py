from django.db import migrations, models

EVENTS = [
    ("lead_assigned", "Lead assigned to me"),
    ("lead_delivered", "Lead delivered to a buyer"),
    ("message_received", "Message received"),
    ("low_wallet", "Low wallet balance"),
    ("payment_failed", "Payment failed"),
    ("integration_error", "Integration error"),
    ("campaign_budget", "Campaign paused: budget spent"),
    ("sla_breached", "Lead not contacted in time"),
    ("automation", "Automation notices"),
    ("daily_summary", "Daily summary (email digest)"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_instant_welcome_for_existing_organizations"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="event",
            field=models.CharField(choices=EVENTS, max_length=20),
        ),
        migrations.AlterField(
            model_name="notificationpreference",
            name="event",
            field=models.CharField(choices=EVENTS, max_length=20),
        ),
    ]
