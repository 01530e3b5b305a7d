"""New organizations get the default pipeline; other apps hear about merges through ``leads_merged`` and about\nchanges made without saving a lead through ``leads_changed``."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from accounts.models import Organization
from billing.models import Subscription

from .models import ScoringRule
from .scoring import rules_forget

# Sent after duplicates were merged into ``primary``: ``merged_ids`` are the leads that no longer exist. Apps with
# rows pointing at leads (messages, deliveries) re-point them in their receiver.
leads_merged = Signal()
# Sent where leads change without ``Lead.save()`` (``QuerySet.update()``, deletion), so apps that keep figures of
# leads (analytics' rollups) hear of it: ``organization_id`` and the changed leads' ``received_at`` values, or
# ``received_at=None`` when too many changed to list them (a stage deleted and its leads moved).
leads_changed = Signal()


@receiver(post_save, sender=Organization)
def create_default_pipeline(sender, instance, created, raw=False, **kwargs):
    from .services.outbox import outbox_organizations_forget

    outbox_organizations_forget()  # the outbox worker in this process reads the changed row from its next batch
    if created and not raw:
        from .services.stages import stages_ensure_default

        stages_ensure_default(organization=instance)


@receiver(post_save, sender=Subscription)
@receiver(post_delete, sender=Subscription)
def forget_cached_quota(sender, instance, **kwargs):
    """Intake in this process counts against the new plan's quota from its next lead on."""
    from .services.quota import quota_forget

    quota_forget(instance.organization_id)


@receiver(post_save, sender=ScoringRule)
@receiver(post_delete, sender=ScoringRule)
def forget_cached_rules(sender, **kwargs):
    """Intake in this process scores with the edited rules from its next lead on."""
    rules_forget()
