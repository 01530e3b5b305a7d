"""Choices shared by lead models, services, forms and the API."""

from django.db import models


class LeadSource(models.TextChoices):
    API = "api", "Supplier API"
    WEBHOOK = "webhook", "Webhook"
    FACEBOOK = "facebook", "Facebook Lead Ads"
    GOOGLE_ADS = "google_ads", "Google Ads"
    LINKEDIN = "linkedin", "LinkedIn Lead Gen"
    FORM = "form", "Web form"
    CSV = "csv", "CSV import"
    MANUAL = "manual", "Added by hand"
    MESSAGE = "message", "Inbound message"


class StageKind(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


# New organizations start with this pipeline; each can rename, reorder, add and remove stages.
DEFAULT_STAGES = [
    ("New", StageKind.OPEN, "#6366f1"),
    ("Contacted", StageKind.OPEN, "#0ea5e9"),
    ("Qualified", StageKind.OPEN, "#14b8a6"),
    ("Proposal", StageKind.OPEN, "#f59e0b"),
    ("Won", StageKind.WON, "#22c55e"),
    ("Lost", StageKind.LOST, "#ef4444"),
]


class Grade(models.TextChoices):
    HOT = "hot", "Hot"
    WARM = "warm", "Warm"
    COLD = "cold", "Cold"


class SubmissionStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Duplicate"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"


class ActivityKind(models.TextChoices):
    CREATED = "created", "Lead created"
    DUPLICATE = "duplicate", "Duplicate received"
    UPDATED = "updated", "Details changed"
    STAGE_CHANGED = "stage_changed", "Stage changed"
    ASSIGNED = "assigned", "Assigned"
    UNASSIGNED = "unassigned", "Unassigned"
    NOTE = "note", "Note"
    TAGGED = "tagged", "Tags changed"
    WON = "won", "Marked won"
    LOST = "lost", "Marked lost"
    SCORED = "scored", "Score changed"
    MERGED = "merged", "Merged"
    CONTACTED = "contacted", "First contact"
    QUOTA = "quota", "Over plan quota"
    OPTED_OUT = "opted_out", "Opted out of messages"
    OPTED_IN = "opted_in", "Opted in to messages again"


class AssignmentStrategy(models.TextChoices):
    MANUAL = "manual", "Manual (leads wait in the unassigned queue)"
    ROUND_ROBIN = "round_robin", "Round robin"
    LEAST_LOADED = "least_loaded", "Least loaded"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Waiting for column mapping"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class RuleOperator(models.TextChoices):
    EQUALS = "equals", "equals"
    NOT_EQUALS = "not_equals", "does not equal"
    CONTAINS = "contains", "contains"
    IN = "in", "is one of (comma separated)"
    GTE = "gte", "is at least"
    LTE = "lte", "is at most"
    IS_SET = "is_set", "is filled in"
    IS_EMPTY = "is_empty", "is empty"


DUPLICATE_WINDOW_DAYS = 30
MAX_TAGS = 30
TAG_MAX_LENGTH = 40
