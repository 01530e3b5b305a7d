from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries.fields import CountryField

from leadflow.tenancy.models import TenantManager, TenantModel
from leads.constants import DUPLICATE_WINDOW_DAYS, AssignmentStrategy

from .constants import (
    PHONE_REGION_CHOICES,
    ROLE_RANK,
    TIMEZONE_CHOICES,
    CompanySize,
    Currency,
    Industry,
    Role,
)
from .managers import UserManager


class User(AbstractUser):
    username = None
    email = models.EmailField("email address", unique=True)
    # The organization a user last worked in: where pages and API tokens land when nothing else says.
    active_organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


class Organization(models.Model):
    """The tenant: everything a customer owns hangs off one organization."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    country = CountryField(default="IN")
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="Asia/Kolkata")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.INR)
    default_phone_region = models.CharField(
        max_length=2, choices=PHONE_REGION_CHOICES, default="IN", help_text="Region used to read local phone numbers"
    )
    industry = models.CharField(max_length=32, choices=Industry.choices, default=Industry.OTHER)
    company_size = models.CharField(max_length=8, choices=CompanySize.choices, blank=True)
    website = models.URLField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    address = models.TextField(blank=True)
    tax_id = models.CharField("GSTIN / VAT id", max_length=32, blank=True)
    is_active = models.BooleanField(default=True)
    # Leads: how far back a matching email or phone makes a new lead a duplicate, and who gets new leads.
    duplicate_window_days = models.PositiveSmallIntegerField(
        default=DUPLICATE_WINDOW_DAYS,
        help_text="A lead with the same email or phone within this many days is a duplicate",
    )
    assignment_strategy = models.CharField(
        max_length=16,
        choices=AssignmentStrategy.choices,
        default=AssignmentStrategy.MANUAL,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(TenantModel):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    # Automatic lead assignment: who takes new leads, how many open leads at most (0 = no limit), and when they
    # last got one (round robin picks the longest-waiting).
    receives_leads = models.BooleanField(default=True)
    lead_capacity = models.PositiveIntegerField(default=0, help_text="Open leads at most; 0 means no limit")
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="accounts_membership_unique"),
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization_id} as {self.role}"

    def has_role(self, required: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(required)]


class Invitation(TenantModel):
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open invitation per address and organization; re-inviting replaces it.
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="accounts_invitation_one_open_per_email",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_open(self) -> bool:
        return self.status == "pending"


class ApiKey(TenantModel):
    """An organization's key for integrations. Only a SHA-256 of the key is stored; the key is shown once."""

    PREFIX = "lf_"

    name = models.CharField(max_length=100)
    # The public part of the key, used to find the row before comparing hashes.
    lookup_id = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"

    @staticmethod
    def hash_key(raw_key: str) -> str:
        # Keys carry 256 bits of randomness, so a fast hash is as safe as a slow one and keeps auth cheap.
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @property
    def display_prefix(self) -> str:
        return f"{self.PREFIX}{self.lookup_id}"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class AuditEvent(models.Model):
    """Who did what, from where. Written by services; never edited."""

    # Null for events with no organization yet, e.g. a failed login for an unknown address.
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="accounts_audit_org_time")]

    def __str__(self) -> str:
        return f"{self.action} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def changes_display(self) -> list[tuple[str, str]]:
        """Each change as ``field: old → new`` (or the recorded value), for pages and exports."""
        return [
            (field, " → ".join(map(str, value)) if isinstance(value, list) else str(value))
            for field, value in self.changes.items()
        ]

    @property
    def actor_display(self) -> str:
        if self.actor_user_id:
            return str(self.actor_user)
        if self.actor_api_key_id:
            return f"API key {self.actor_api_key}"
        return "system"
