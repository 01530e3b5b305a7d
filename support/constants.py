"""Choices of support tickets."""

from django.db import models


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"  # waiting for LeadFlow's support team
    PENDING = "pending", "Waiting for you"  # support answered; the customer's turn
    CLOSED = "closed", "Closed"


class TicketCategory(models.TextChoices):
    QUESTION = "question", "A question"
    PROBLEM = "problem", "Something is not working"
    BILLING = "billing", "Billing and invoices"
    INTEGRATIONS = "integrations", "Lead sources and integrations"
    ACCOUNT = "account", "Account, team and access"


SUBJECT_MAX_LENGTH = 200
BODY_MAX_LENGTH = 10_000
