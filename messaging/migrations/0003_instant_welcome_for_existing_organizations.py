"""Every organization that existed before conversations gets what new ones get at creation: the welcome templates
(WhatsApp, SMS, email, and the WhatsApp notification template) and the "instant welcome" automation. Written with
the historical models, so it keeps working as the models change; organizations that have them are left alone."""

from django.db import migrations

TEMPLATES = [
    (
        "welcome",
        "whatsapp",
        "",
        "Hi {{1}}, thanks for contacting {{2}}! We got your enquiry and will be in touch shortly. Reply here with any "
        "question.",
        ["first_name", "organization"],
    ),
    (
        "welcome",
        "sms",
        "",
        "Hi {{first_name}}, thanks for contacting {{organization}}! We got your enquiry and will call you shortly. "
        "Reply STOP to opt out.",
        [],
    ),
    (
        "welcome",
        "email",
        "Thanks for contacting {{organization}}",
        "Hi {{first_name}},\n\nThanks for contacting {{organization}}. We got your enquiry and someone from our team "
        "will be in touch shortly. Just reply to this email if you have a question.\n",
        [],
    ),
    ("leadflow_notification", "whatsapp", "", "LeadFlow: {{1}}", ["organization"]),
]


def install(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    AutomationRule = apps.get_model("messaging", "AutomationRule")
    AutomationStep = apps.get_model("messaging", "AutomationStep")
    for organization in Organization.objects.all().iterator():
        for name, channel, subject, body, variables in TEMPLATES:
            MessageTemplate.objects.get_or_create(
                organization=organization,
                name=name,
                channel=channel,
                language="en",
                defaults={"subject": subject, "body": body, "variables": variables, "status": "approved"},
            )
        rule, created = AutomationRule.objects.get_or_create(
            organization=organization,
            system_key="instant_welcome",
            defaults={"name": "Instant welcome", "trigger": "lead_created", "conditions": {}, "stop_on_reply": True},
        )
        if created:
            AutomationStep.objects.create(
                organization=organization,
                rule=rule,
                position=0,
                action="send_template",
                config={"template": "welcome", "channel": "preferred"},
            )


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0002_conversations_templates_automations_notifications"),
        ("accounts", "0002_lead_assignment_settings"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
