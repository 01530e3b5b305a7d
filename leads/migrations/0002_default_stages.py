"""Give organizations created before leads existed the default pipeline."""

from django.db import migrations

DEFAULT_STAGES = [
    ("New", "open", "#6366f1"),
    ("Contacted", "open", "#0ea5e9"),
    ("Qualified", "open", "#14b8a6"),
    ("Proposal", "open", "#f59e0b"),
    ("Won", "won", "#22c55e"),
    ("Lost", "lost", "#ef4444"),
]


def seed_stages(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    PipelineStage = apps.get_model("leads", "PipelineStage")
    for organization in Organization.objects.all():
        if not PipelineStage.objects.filter(organization=organization).exists():
            PipelineStage.objects.bulk_create(
                PipelineStage(organization=organization, name=name, kind=kind, color=color, position=position)
                for position, (name, kind, color) in enumerate(DEFAULT_STAGES)
            )


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]

    operations = [migrations.RunPython(seed_stages, migrations.RunPython.noop)]
