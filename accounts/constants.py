"""Choices shared by models, forms and the API."""

import zoneinfo

import phonenumbers
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    AGENT = "agent", "Agent"
    VIEWER = "viewer", "Viewer"


# Higher rank can do everything a lower rank can.
ROLE_RANK = {Role.VIEWER: 10, Role.AGENT: 20, Role.MANAGER: 30, Role.ADMIN: 40, Role.OWNER: 50}


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    INGEST = "ingest", "Ingest leads"


class Industry(models.TextChoices):
    REAL_ESTATE = "real_estate", "Real estate"
    INSURANCE = "insurance", "Insurance"
    HEALTHCARE = "healthcare", "Healthcare"
    EDUCATION = "education", "Education"
    SOLAR = "solar", "Solar & energy"
    HOME_SERVICES = "home_services", "Home services"
    FINANCE = "finance", "Finance & loans"
    AUTOMOTIVE = "automotive", "Automotive"
    LEGAL = "legal", "Legal"
    AGENCY = "agency", "Marketing agency"
    ECOMMERCE = "ecommerce", "E-commerce"
    OTHER = "other", "Other"


class CompanySize(models.TextChoices):
    SOLO = "1", "Just me"
    SMALL = "2-10", "2–10"
    MEDIUM = "11-50", "11–50"
    LARGE = "51-200", "51–200"
    ENTERPRISE = "201+", "201+"


# Currencies LeadFlow bills and prices leads in (ISO 4217).
class Currency(models.TextChoices):
    INR = "INR", "Indian rupee (INR)"
    USD = "USD", "US dollar (USD)"
    EUR = "EUR", "Euro (EUR)"
    GBP = "GBP", "British pound (GBP)"
    AUD = "AUD", "Australian dollar (AUD)"
    CAD = "CAD", "Canadian dollar (CAD)"
    SGD = "SGD", "Singapore dollar (SGD)"
    AED = "AED", "UAE dirham (AED)"


TIMEZONE_CHOICES = [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones()) if "/" in name]
PHONE_REGION_CHOICES = [(region, region) for region in sorted(phonenumbers.SUPPORTED_REGIONS)]
