"""A campaign's subscriptions version, kept by the database.

Distribution keeps each campaign's subscriptions and their buyers in memory per process and checks, under the
campaign's lock, that ``Campaign.subscriptions_version`` is still the one it loaded them at. Triggers raise it on
every change that matters however it is made (a form, the admin, ``QuerySet.update()``, raw SQL), so no process
distributes by a stale subscription, cap, schedule, pause or credit limit:

* any insert, update or delete of a subscription raises its campaign's (both campaigns when one moves);
* an update of a buyer that changes one of the columns distribution reads of it (``BUYER_COLUMNS``, the ``buyer__``
  columns of ``campaigns.services.distribution.SUBSCRIPTION_COLUMNS``; a test keeps the two lists equal) raises every
  campaign it subscribes to;
* an update of the campaign itself never lowers it (a form saving a ``Campaign`` read before a change).

The new version is the next value of a sequence, not the old one plus one: sequences ignore rollbacks, so a version
seen inside a transaction that rolled back (subscriptions changed and distributed in one transaction, then
undone) is never given to another state of the subscriptions.
"""

from django.db import migrations, models

BUYER_COLUMNS = (
    "name",
    "status",
    "timezone",
    "credit_limit",
    "weekly_spend_limit",
    "monthly_spend_limit",
    "low_balance_threshold",
    "auto_recharge_enabled",
    "auto_recharge_threshold",
)
_OLD = ", ".join(f"OLD.{column}" for column in BUYER_COLUMNS)
_NEW = ", ".join(f"NEW.{column}" for column in BUYER_COLUMNS)

FORWARD = f"""
CREATE SEQUENCE campaigns_subscriptions_version_seq;

CREATE FUNCTION campaigns_subscription_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE campaigns_campaign SET subscriptions_version = nextval('campaigns_subscriptions_version_seq') WHERE id = OLD.campaign_id;
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE campaigns_campaign SET subscriptions_version = nextval('campaigns_subscriptions_version_seq') WHERE id = NEW.campaign_id;
    ELSIF TG_OP = 'UPDATE' AND NEW.campaign_id <> OLD.campaign_id THEN
        UPDATE campaigns_campaign SET subscriptions_version = nextval('campaigns_subscriptions_version_seq') WHERE id = NEW.campaign_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER campaigns_subscription_changed
    AFTER INSERT OR UPDATE OR DELETE ON campaigns_buyersubscription
    FOR EACH ROW EXECUTE FUNCTION campaigns_subscription_changed();

CREATE FUNCTION campaigns_buyer_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE campaigns_campaign SET subscriptions_version = nextval('campaigns_subscriptions_version_seq')
     WHERE id IN (SELECT campaign_id FROM campaigns_buyersubscription WHERE buyer_id = NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER campaigns_buyer_changed
    AFTER UPDATE ON campaigns_buyer
    FOR EACH ROW WHEN (({_OLD}) IS DISTINCT FROM ({_NEW}))
    EXECUTE FUNCTION campaigns_buyer_changed();

CREATE FUNCTION campaigns_campaign_version_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.subscriptions_version := GREATEST(NEW.subscriptions_version, OLD.subscriptions_version);
    RETURN NEW;
END
$$;
CREATE TRIGGER campaigns_campaign_version_kept
    BEFORE UPDATE ON campaigns_campaign
    FOR EACH ROW EXECUTE FUNCTION campaigns_campaign_version_kept();
"""  # noqa: S608 - the column names are the constant BUYER_COLUMNS

BACKWARD = """
DROP TRIGGER IF EXISTS campaigns_campaign_version_kept ON campaigns_campaign;
DROP FUNCTION IF EXISTS campaigns_campaign_version_kept();
DROP TRIGGER IF EXISTS campaigns_buyer_changed ON campaigns_buyer;
DROP FUNCTION IF EXISTS campaigns_buyer_changed();
DROP TRIGGER IF EXISTS campaigns_subscription_changed ON campaigns_buyersubscription;
DROP FUNCTION IF EXISTS campaigns_subscription_changed();
DROP SEQUENCE IF EXISTS campaigns_subscriptions_version_seq;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_sales_and_submissions_indexed_by_time"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="subscriptions_version",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
