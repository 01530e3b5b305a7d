from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0003_lead_search_planning"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(fields=["organization", "score"], name="leads_score_idx"),
        ),
        # A tag filter picks between walking the newest-first index and fetching the tag's leads from the GIN index
        # from how common PostgreSQL thinks the tag is. With the default statistics a rare tag (a few in a thousand
        # leads) falls off the most-common list, is taken for a common one and costs a walk past tens of thousands
        # of leads; with 1000 entries its real frequency is known. (ANALYZE already samples 300,000 rows for
        # search_text, so this adds no sampling.)
        migrations.RunSQL(
            'ALTER TABLE "leads_lead" ALTER COLUMN "tags" SET STATISTICS 1000',
            reverse_sql='ALTER TABLE "leads_lead" ALTER COLUMN "tags" SET STATISTICS -1',
        ),
    ]
