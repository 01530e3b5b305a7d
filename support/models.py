"""Support tickets: a customer's conversation with LeadFlow's support team. Tenant-owned: a ticket and its
messages belong to the organization whose member opened it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from leadflow.tenancy.models import TenantModel

from .constants import SUBJECT_MAX_LENGTH, TicketCategory, TicketStatus


class SupportTicket(TenantModel):
    subject = models.CharField(max_length=SUBJECT_MAX_LENGTH)
    category = models.CharField(max_length=16, choices=TicketCategory.choices, default=TicketCategory.QUESTION)
    status = models.CharField(max_length=8, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        indexes = [models.Index(fields=["organization", "status", "-last_message_at"], name="support_ticket_list_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=TicketStatus.values), name="support_ticket_status"),
            models.CheckConstraint(
                condition=models.Q(status=TicketStatus.CLOSED, closed_at__isnull=False)
                | (~models.Q(status=TicketStatus.CLOSED) & models.Q(closed_at__isnull=True)),
                name="support_ticket_closed_at",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class TicketMessage(TenantModel):
    """One message of a ticket's thread, from the customer or from staff. Never edited."""

    ticket = models.ForeignKey(SupportTicket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_staff = models.BooleanField(default=False)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="support_message_thread_idx")]

    def __str__(self) -> str:
        return f"{'Staff' if self.from_staff else 'Customer'} on #{self.ticket_id}: {self.body[:40]}"

    @property
    def author_display(self) -> str:
        if self.from_staff:
            first_name = self.author.first_name if self.author_id else ""
            return f"{first_name} (LeadFlow support)" if first_name else "LeadFlow support"
        return self.author.display_name if self.author_id else "a former member"
