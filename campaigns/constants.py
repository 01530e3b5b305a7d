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


class DeliveryKind(models.TextChoices):
    """How a buyer receives its leads. Webhooks and CRM posts go through the integrations webhook machinery."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    WEBHOOK = "webhook", "Signed webhook"
    CRM = "crm", "HTTP post into the buyer's CRM"


# Kinds that LeadFlow sends itself (a SaleDelivery row per try); the others are webhook deliveries.
MESSAGE_DELIVERY_KINDS = (DeliveryKind.EMAIL, DeliveryKind.SMS, DeliveryKind.WHATSAPP)
WEBHOOK_DELIVERY_KINDS = (DeliveryKind.WEBHOOK, DeliveryKind.CRM)


class SaleDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # gave up: retries spent or the destination refused for good
    HANDED_OFF = "handed_off", "Handed to the webhook queue"  # its WebhookDelivery says how it went


# A failed email, SMS or WhatsApp delivery is tried again after these delays; after the last it stays failed.
SALE_DELIVERY_RETRY_DELAYS = (30, 120, 600, 3600, 4 * 3600, 12 * 3600)  # seconds


class SubmissionOutcome(models.TextChoices):
    """What became of a lead posted to a campaign (supplier statistics count these)."""

    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Duplicate"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed (stored, processed again later)"


class ReturnReason(models.TextChoices):
    WRONG_NUMBER = "wrong_number", "Wrong or disconnected number"
    BAD_EMAIL = "bad_email", "Email bounces"
    NOT_INTERESTED = "not_interested", "Never asked to be contacted"
    DUPLICATE = "duplicate", "Duplicate of a lead we already had"
    OUTSIDE_AREA = "outside_area", "Outside our service area"
    UNDERAGE = "underage", "Does not qualify (age, criteria)"
    OTHER = "other", "Other"


class ReturnStatus(models.TextChoices):
    REQUESTED = "requested", "Waiting for a decision"
    APPROVED = "approved", "Approved (refunded)"
    REJECTED = "rejected", "Rejected"


class RechargeStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # the provider accepted it; the wallet is credited when it confirms
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# Leads with this tag (Google Ads' "send test data", LinkedIn test leads, sample leads) are never sold or billed.
TEST_LEAD_TAG = "test-lead"
# An auto-recharge that fails this many times in a row turns itself off (the buyer and the admins are told).
AUTO_RECHARGE_MAX_FAILURES = 3
