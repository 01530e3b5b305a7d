"""Choices shared by campaign models, services, the engine's apply and the API."""

from django.db import models

from leads.constants import RuleOperator


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    NUMBER = "number", "Number"
    CHOICE = "choice", "Choice"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Yes / no"


class CampaignStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class PauseReason(models.TextChoices):
    MANUAL = "manual", "Paused by hand"
    BILLING = "billing", "Paused by billing"
    BUDGET = "budget", "Budget spent"


class DistributionLogic(models.TextChoices):
    # The values are the engine's strategy names (campaigns.engine.selection.Strategy).
    ROUND_ROBIN = "round_robin", "Round robin"
    WEIGHTED = "weighted", "Weighted round robin"
    WATERFALL = "waterfall", "Waterfall (priority order with fallback)"
    BROADCAST = "broadcast", "Broadcast (every eligible buyer)"


class AdChannel(models.TextChoices):
    FACEBOOK = "facebook", "Facebook / Instagram"
    GOOGLE_ADS = "google_ads", "Google Ads"
    TIKTOK = "tiktok", "TikTok"
    LINKEDIN = "linkedin", "LinkedIn"
    NATIVE = "native", "Native ads"
    EMAIL = "email", "Email"
    AFFILIATE = "affiliate", "Affiliates / suppliers"
    ORGANIC = "organic", "Organic"
    OTHER = "other", "Other"


class BuyerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    SUSPENDED = "suspended", "Suspended"


class WalletEntryKind(models.TextChoices):
    CREDIT = "credit", "Credit"
    DEBIT = "debit", "Debit"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


class DistributionStatus(models.TextChoices):
    SOLD = "sold", "Sold"
    UNSOLD = "unsold", "Unsold"


# Subscription field filters use the scoring rules' operators, so a buyer's "age is at least 65" means exactly
# what a scoring rule's does (both are evaluated by leads.scoring.rule_matches).
FilterOperator = RuleOperator

CATEGORY_FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"
MAX_CATEGORY_FIELDS = 100
MAX_SUBSCRIPTION_FILTERS = 50
WEIGHT_MIN, WEIGHT_MAX = 1, 10
