"""Processes that changed a connection forget what they remembered of connections (see selectors.connections)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import IntegrationConnection


@receiver(post_save, sender=IntegrationConnection)
@receiver(post_delete, sender=IntegrationConnection)
def forget_cached_connections(sender, **kwargs):
    from .selectors.connections import connections_forget

    connections_forget()
