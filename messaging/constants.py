"""Choices of the messaging app."""

from django.db import models


class Channel(models.TextChoices):
    """What a usage record meters. Webhooks are metered here too: they are rebilled the same way."""

    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


# The channels a conversation (and a template) can be on.
class MessageChannel(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    ARCHIVED = "archived", "Archived"


class Direction(models.TextChoices):
    INBOUND = "in", "Received"
    OUTBOUND = "out", "Sent"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    RECEIVED = "received", "Received"


# Status callbacks arrive late, twice and out of order: a message only moves up this ladder. Failed sits above sent
# (a send that failed after the carrier took it) and below delivered (a delivery receipt proves it arrived after all,
# and a late "failed" never undoes a delivered or read message).
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.FAILED: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    MessageStatus.RECEIVED: 0,
}


class MessagePurpose(models.TextChoices):
    CONVERSATION = "conversation", "Conversation with a lead"
    NOTIFICATION = "notification", "Notification to a team member"


class WhatsAppProvider(models.TextChoices):
    TWILIO = "twilio", "Twilio"
    META = "meta", "Meta WhatsApp Cloud API"


class TemplateCategory(models.TextChoices):
    UTILITY = "utility", "Utility"
    MARKETING = "marketing", "Marketing"
    AUTHENTICATION = "authentication", "Authentication"


class TemplateStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    PENDING = "pending", "Pending approval"
    REJECTED = "rejected", "Rejected"
    PAUSED = "paused", "Paused"
    DISABLED = "disabled", "Disabled"


class OptOutMethod(models.TextChoices):
    KEYWORD = "keyword", "Replied with an opt-out keyword"
    LINK = "link", "Clicked an unsubscribe link"
    PROVIDER = "provider", "Refused by the provider (opted out there)"
    MANUAL = "manual", "Recorded by a team member"


class ProviderEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    REJECTED = "rejected", "Rejected (bad signature)"
    FAILED = "failed", "Failed"


class AutomationTrigger(models.TextChoices):
    LEAD_CREATED = "lead_created", "A lead is created"
    STAGE_CHANGED = "stage_changed", "A lead's stage changes"
    NO_REPLY = "no_reply", "No reply for N hours after our last message"
    NO_ACTIVITY = "no_activity", "No activity on the lead for N hours"
    MESSAGE_RECEIVED = "message_received", "A message is received"
    LEAD_DELIVERED = "lead_delivered", "A lead is delivered to a buyer"


class AutomationAction(models.TextChoices):
    SEND_TEMPLATE = "send_template", "Send a template"
    ASSIGN = "assign", "Assign the lead"
    TAG = "tag", "Tag the lead"
    CHANGE_STAGE = "change_stage", "Change the stage"
    NOTIFY = "notify", "Notify the team"
    WEBHOOK = "webhook", "Call a webhook"
    WAIT = "wait", "Wait"


class ExecutionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    COMPLETED = "completed", "Completed"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


class StepRunStatus(models.TextChoices):
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class NotificationEvent(models.TextChoices):
    LEAD_ASSIGNED = "lead_assigned", "Lead assigned to me"
    LEAD_DELIVERED = "lead_delivered", "Lead delivered to a buyer"
    MESSAGE_RECEIVED = "message_received", "Message received"
    LOW_WALLET = "low_wallet", "Low wallet balance"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    INTEGRATION_ERROR = "integration_error", "Integration error"
    CAMPAIGN_BUDGET = "campaign_budget", "Campaign paused: budget spent"
    SLA_BREACHED = "sla_breached", "Lead not contacted in time"
    AUTOMATION = "automation", "Automation notices"
    DAILY_SUMMARY = "daily_summary", "Daily summary (email digest)"


class NotificationChannel(models.TextChoices):
    IN_APP = "in_app", "In app"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"


# What a member gets when they never touched their preferences.
DEFAULT_NOTIFICATION_CHANNELS = {
    NotificationEvent.LEAD_ASSIGNED: {NotificationChannel.IN_APP, NotificationChannel.EMAIL},
    NotificationEvent.LEAD_DELIVERED: {NotificationChannel.IN_APP},
    NotificationEvent.MESSAGE_RECEIVED: {NotificationChannel.IN_APP},
    NotificationEvent.LOW_WALLET: {NotificationChannel.IN_APP, NotificationChannel.EMAIL},
    NotificationEvent.PAYMENT_FAILED: {NotificationChannel.IN_APP, NotificationChannel.EMAIL},
    NotificationEvent.INTEGRATION_ERROR: {NotificationChannel.IN_APP, NotificationChannel.EMAIL},
    NotificationEvent.CAMPAIGN_BUDGET: {NotificationChannel.IN_APP, NotificationChannel.EMAIL},
    NotificationEvent.SLA_BREACHED: {NotificationChannel.IN_APP, NotificationChannel.EMAIL},
    NotificationEvent.AUTOMATION: {NotificationChannel.IN_APP},
    NotificationEvent.DAILY_SUMMARY: {NotificationChannel.EMAIL},
}

# Single-word replies carriers and WhatsApp users send to stop or restart messages (Twilio's list).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT-OUT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})

WHATSAPP_WINDOW_HOURS = 24
