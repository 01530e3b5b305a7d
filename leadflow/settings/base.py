"""Settings shared by every environment, read from the environment with django-environ.

Every variable is listed with a one-line comment in `.env.example`.
"""

from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://localhost:8000").rstrip("/")

# LeadFlow's domain apps: the tenancy and privacy tests walk every model of each.
LEADFLOW_DOMAIN_APPS = [
    "accounts",
    "billing",
    "leads",
    "campaigns",
    "messaging",
    "integrations",
    "support",
    "privacy",
    "analytics",
]
INSTALLED_APPS = [
    "daphne",
    "leadflow.apps.LeadFlowAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "django.contrib.postgres",
    # third party
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "channels",
    "django_htmx",
    "django_countries",
    "djstripe",
    "anymail",
    # LeadFlow
    "leadflow",
    *LEADFLOW_DOMAIN_APPS,
]

MIDDLEWARE = [
    # First: everything below runs with the request id in scope and is counted.
    "leadflow.logs.RequestIdMiddleware",
    "leadflow.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "leadflow.tenancy.middleware.OrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "leadflow.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "leadflow.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "leadflow.context_processors.workspace",
            ],
        },
    },
]

# Databases ------------------------------------------------------------------
# PostgreSQL only: leads rely on its full-text search, trigram indexes, arrays and advisory locks.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/leadflow")}
# No JIT: LeadFlow's queries are short index lookups, and JIT compiling a plan that only looks expensive (a big
# table's estimate) costs ~200 ms. psycopg's default client-side binding means no server-side prepared statements,
# so no generic plans (which made trigram searches 50x slower in testing).
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# 0 for the web process: under ASGI every request runs in a thread of its own, so a kept connection is never reused.
# Celery workers (long-lived threads) keep theirs: the Procfile sets DATABASE_CONN_MAX_AGE for them.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A streaming read replica for reports: code that opts in (leadflow.db_router.reading_from_replica) reads from it;
# writes, and reads inside a transaction, always go to the primary. Unset, everything reads the primary.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    DATABASES["replica"]["ATOMIC_REQUESTS"] = False
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
DATABASE_ROUTERS = ["leadflow.db_router.ReplicaRouter"]

# Redis: cache, channel layer and Celery broker. Absent, everything falls back to in-process equivalents.
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "leadflow.channel_layer.ResilientRedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env("CHANNELS_PREFIX", default="leadflow")},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery ---------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not (REDIS_URL or env("CELERY_BROKER_URL", default=""))
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after each task unless this is set: a new
# PostgreSQL backend per task, which cost the outbox worker more than the work it did. Connections are instead
# recycled the way Django recycles them around a request (CONN_MAX_AGE, health checks), in leadflow.celery.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Workers log through Django's LOGGING (JSON, with task ids) instead of Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic work is declared here, in code; DatabaseScheduler copies it into django-celery-beat's tables at start.
CELERY_BEAT_SCHEDULE = {
    "accounts-purge-expired-invitations": {
        "task": "accounts.tasks.purge_expired_invitations",
        "schedule": 60 * 60 * 6,
    },
    "leads-sweep-outbox": {"task": "leads.tasks.sweep_outbox", "schedule": 60},
    "leads-prune-outbox": {"task": "leads.tasks.prune_outbox", "schedule": crontab(hour=3, minute=15)},
    "integrations-send-due-webhook-deliveries": {
        "task": "integrations.tasks.send_due_webhook_deliveries",
        "schedule": 30,
    },
    "leads-retry-stuck-submissions": {"task": "leads.tasks.retry_stuck_submissions", "schedule": 60 * 5},
    "leads-drain-assignment-queues": {"task": "leads.tasks.drain_all_assignment_queues", "schedule": 60 * 5},
    "leads-rescore-nightly": {
        "task": "leads.tasks.rescore_recent_leads",
        "schedule": crontab(hour=2, minute=30),
    },
    # Facebook Lead Ads backfill: what Meta failed to notify us about (it gives up after 36 hours).
    "integrations-sync-facebook-leads": {"task": "integrations.tasks.sync_facebook_leads", "schedule": 60 * 15},
    "integrations-sync-linkedin-leads": {"task": "integrations.tasks.sync_linkedin_leads", "schedule": 60 * 15},
    # Lead stages for Meta's Conversions API whose retry is due (the first retries are queued with a countdown).
    "integrations-send-due-conversion-events": {
        "task": "integrations.tasks.send_due_conversion_events",
        "schedule": 60,
    },
    # Billing: trials that ended become past due, reminders during the grace period, suspension after it, and
    # last month's metered usage as invoice lines.
    "billing-expire-trials": {"task": "billing.tasks.expire_trials", "schedule": 60 * 15},
    "billing-send-reminders": {"task": "billing.tasks.send_billing_reminders", "schedule": crontab(minute=0)},
    "billing-suspend-after-grace": {"task": "billing.tasks.suspend_after_grace", "schedule": 60 * 15},
    "billing-sweep-events": {"task": "billing.tasks.sweep_billing_events", "schedule": 60 * 5},
    "billing-invoice-metered-usage": {
        "task": "billing.tasks.invoice_metered_usage",
        "schedule": crontab(day_of_month=1, hour=1, minute=0),
    },
    # Operations: proves beat and a worker are alive (the admin's system health page shows its age).
    "operations-beat-tick": {"task": "leadflow.tasks.record_beat_tick", "schedule": 30},
    # Privacy: each organization's retention policy (old raw payloads, webhook logs, closed leads).
    "privacy-apply-retention": {"task": "privacy.tasks.apply_retention", "schedule": crontab(hour=3, minute=15)},
}
# Outbound webhooks: seconds a receiver has to answer (Standard Webhooks suggests 15 to 30), and whether endpoints may
# resolve to private or loopback addresses (never in production: it would let a tenant probe our network).
WEBHOOK_TIMEOUT_S = env.float("WEBHOOK_TIMEOUT_S", default=15.0)
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=DEBUG)
# Inbound integrations: credentials are encrypted with these Fernet keys (comma-separated, newest first). Unset,
# a key derived from SECRET_KEY is used and `check --deploy` warns (integrations.W001).
INTEGRATIONS_ENCRYPTION_KEY = env("INTEGRATIONS_ENCRYPTION_KEY", default="")
# Facebook Lead Ads: the app's secret signs webhook notifications; the verify token answers Meta's handshake.
FACEBOOK_APP_ID = env("FACEBOOK_APP_ID", default="")
FACEBOOK_APP_SECRET = env("FACEBOOK_APP_SECRET", default="")
FACEBOOK_VERIFY_TOKEN = env("FACEBOOK_VERIFY_TOKEN", default="")
FACEBOOK_GRAPH_URL = env("FACEBOOK_GRAPH_URL", default="https://graph.facebook.com").rstrip("/")
FACEBOOK_GRAPH_VERSION = env("FACEBOOK_GRAPH_VERSION", default="21.0").lstrip("v")
FACEBOOK_GRAPH_TIMEOUT_S = env.float("FACEBOOK_GRAPH_TIMEOUT_S", default=10.0)
# LinkedIn Lead Gen: the REST API's base and the monthly version sent as LinkedIn-Version.
LINKEDIN_API_URL = env("LINKEDIN_API_URL", default="https://api.linkedin.com").rstrip("/")
LINKEDIN_API_VERSION = env("LINKEDIN_API_VERSION", default="202510")
LINKEDIN_API_TIMEOUT_S = env.float("LINKEDIN_API_TIMEOUT_S", default=10.0)
# The scorer leads use; an AI scorer can replace it (see leads.scoring).
LEADFLOW_LEAD_SCORER = env("LEADFLOW_LEAD_SCORER", default="leads.scoring.RuleScorer")

# Auth -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
SITE_ID = 1

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[LeadFlow] "
# Login attempts are throttled per IP and per account (allauth's cache-backed limiter).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "request_login_code": "20/m/ip,3/m/key",
}
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"

GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID", default="")
GOOGLE_CLIENT_SECRET = env("GOOGLE_CLIENT_SECRET", default="")
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
        "APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}]
        if GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET
        else [],
    }
}
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True

# Email ----------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# Any email service provider through django-anymail, e.g. EMAIL_BACKEND=anymail.backends.postmark.EmailBackend with
# ANYMAIL='{"POSTMARK_SERVER_TOKEN": "…"}'; ANYMAIL_WEBHOOK_SECRET ("user:password") guards its webhooks.
if env("EMAIL_BACKEND", default=""):
    EMAIL_BACKEND = env("EMAIL_BACKEND")
ANYMAIL = {**env.json("ANYMAIL", default={}), "WEBHOOK_SECRET": env("ANYMAIL_WEBHOOK_SECRET", default="")}
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="LeadFlow <no-reply@leadflow.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# API ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "leadflow.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "leadflow.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "leadflow.api.throttling.ApiKeyRateThrottle",
        "leadflow.api.throttling.UserRateThrottle",
        "leadflow.api.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_THROTTLE_API_KEY", default="6000/min"),
        "user": env("API_THROTTLE_USER", default="1200/min"),
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "token_obtain": env("API_THROTTLE_TOKEN_OBTAIN", default="10/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "ENUM_NAME_OVERRIDES": {
        "StageKindEnum": "leads.constants.StageKind",
        "ActivityKindEnum": "leads.constants.ActivityKind",
        "WebhookDeliveryStatusEnum": "integrations.constants.WebhookDeliveryStatus",
    },
    "TITLE": "LeadFlow API",
    "DESCRIPTION": (
        "Capture, clean, route and work leads. Authenticate with an organization API key "
        "(`Authorization: Api-Key lf_…` or `X-API-Key: lf_…`), a user token "
        "(`Authorization: Token …` from `POST /api/v1/auth/token/`), or the browser session."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    },
    "SECURITY": [{"ApiKeyAuth": []}],
    # Swagger UI is served from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Product --------------------------------------------------------------------
TRIAL_DAYS = env.int("TRIAL_DAYS", default=14)

# Billing --------------------------------------------------------------------
# Which provider bills an organization: "auto" picks Razorpay for INR and Stripe otherwise, each only when its
# keys are set, and the offline provider (development and tests, no network) when they are not.
BILLING_PROVIDER = env("BILLING_PROVIDER", default="auto")
RAZORPAY_KEY_ID = env("RAZORPAY_KEY_ID", default="")
RAZORPAY_KEY_SECRET = env("RAZORPAY_KEY_SECRET", default="")
RAZORPAY_WEBHOOK_SECRET = env("RAZORPAY_WEBHOOK_SECRET", default="")
RAZORPAY_API_URL = env("RAZORPAY_API_URL", default="https://api.razorpay.com").rstrip("/")
RAZORPAY_CHECKOUT_JS_URL = env("RAZORPAY_CHECKOUT_JS_URL", default="https://checkout.razorpay.com/v1/checkout.js")
# Stripe through dj-stripe. STRIPE_API_BASE points the SDK at another host (tests use a local stand-in).
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# Lifecycle: days past due before suspension, and days between reminders while past due.
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=7)
BILLING_REMINDER_EVERY_DAYS = env.int("BILLING_REMINDER_EVERY_DAYS", default=2)
BILLING_TRIAL_REMINDER_DAYS = env.list("BILLING_TRIAL_REMINDER_DAYS", cast=int, default=[3, 1])
# Where reminders go besides email: the "whatsapp" channel is messaging's notifications (the bell, and WhatsApp or
# SMS to each owner's phone as they prefer); billing.notifications.LoggingWhatsAppChannel only logs.
BILLING_NOTIFICATION_CHANNELS = env.list("BILLING_NOTIFICATION_CHANNELS", default=["email", "whatsapp"])
BILLING_WHATSAPP_CHANNEL = env(
    "BILLING_WHATSAPP_CHANNEL", default="messaging.services.notifications.BillingNoticeChannel"
)
# Invoices: who issues them, and tax. India: GST at BILLING_GST_RATE % under SAC BILLING_GST_SAC (CGST + SGST
# within the supplier's state, IGST across states). Elsewhere: VAT at BILLING_VAT_RATE % (0 with the customer's VAT
# id: reverse charge).
BILLING_SUPPLIER_NAME = env("BILLING_SUPPLIER_NAME", default="LeadFlow")
BILLING_SUPPLIER_ADDRESS = env("BILLING_SUPPLIER_ADDRESS", default="")
BILLING_SUPPLIER_GSTIN = env("BILLING_SUPPLIER_GSTIN", default="")
BILLING_SUPPLIER_VAT_ID = env("BILLING_SUPPLIER_VAT_ID", default="")
BILLING_GST_RATE = env("BILLING_GST_RATE", default="18")
BILLING_GST_SAC = env("BILLING_GST_SAC", default="998314")
BILLING_VAT_RATE = env("BILLING_VAT_RATE", default="0")
# The offline provider's checkout page "pays" without money: development, tests and demos only (off in production).
BILLING_OFFLINE_CHECKOUT = env.bool("BILLING_OFFLINE_CHECKOUT", default=True)
# One-time login links in the welcome email after a checkout, valid this long.
MAGIC_LINK_TTL_HOURS = env.int("MAGIC_LINK_TTL_HOURS", default=72)
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
# Support tickets: staff are emailed here (a shared inbox or helpdesk); unset, every active staff account is.
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="")

# I18N -----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))
MEDIA_URL = "media/"

# Logging --------------------------------------------------------------------
# LOG_FORMAT=json writes one JSON object per line (production's default); every line names its request id or
# Celery task (leadflow.logs).
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "leadflow.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(context)s%(message)s"},
        "json": {"()": "leadflow.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request URL at INFO, and the Graph API takes its access token in the query string.
        "httpx": {"level": "WARNING"},
        # WeasyPrint narrates every step of every invoice PDF at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
# Campaigns: Campaign.distribution_logic and LeadDistribution.strategy share one choice set in the API schema.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["DistributionLogicEnum"] = "campaigns.constants.DistributionLogic"
# Billing: one choice set per meaning in the API schema (integrations also have a "provider").
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "BillingProviderEnum": "billing.models.BillingProvider",
        "SubscriptionStatusEnum": "billing.models.SubscriptionStatus",
        "TopUpStatusEnum": "billing.models.TopUpStatus",
        "InvoiceStatusEnum": "billing.models.InvoiceStatus",
    }
)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["WalletEntryKindEnum"] = "campaigns.constants.WalletEntryKind"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["DeliveryKindEnum"] = "campaigns.constants.DeliveryKind"

# Messaging providers --------------------------------------------------------------------------------------------
# Twilio for SMS and WhatsApp; without an account SID and auth token, messages are written to the log instead.
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_API_URL = env("TWILIO_API_URL", default="https://api.twilio.com").rstrip("/")
# The Content API, where WhatsApp templates and their approval live (a stand-in in tests).
TWILIO_CONTENT_API_URL = env("TWILIO_CONTENT_API_URL", default="https://content.twilio.com").rstrip("/")
TWILIO_TIMEOUT_S = env.float("TWILIO_TIMEOUT_S", default=10.0)
TWILIO_SMS_FROM = env("TWILIO_SMS_FROM", default="")
TWILIO_MESSAGING_SERVICE_SID = env("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_WHATSAPP_FROM = env("TWILIO_WHATSAPP_FROM", default="")
# An approved WhatsApp template (Content SID): needed to message buyers outside WhatsApp's 24-hour window.
TWILIO_WHATSAPP_CONTENT_SID = env("TWILIO_WHATSAPP_CONTENT_SID", default="")
# Usage metering: what a send costs when the provider does not say (Twilio prices messages after sending), in
# USAGE_COST_CURRENCY, and the markup organizations are billed on top unless they have their own.
USAGE_COST_CURRENCY = env("USAGE_COST_CURRENCY", default="USD")
USAGE_COSTS = {
    "sms": Decimal(env("USAGE_COST_SMS", default="0.0079")),
    "whatsapp": Decimal(env("USAGE_COST_WHATSAPP", default="0.0050")),
    "email": Decimal(env("USAGE_COST_EMAIL", default="0.0001")),
    "webhook": Decimal(env("USAGE_COST_WEBHOOK", default="0")),
}
USAGE_DEFAULT_MARKUP_PERCENT = Decimal(env("USAGE_DEFAULT_MARKUP_PERCENT", default="0"))
# Usage is metered in the provider's currency and invoiced in the organization's (billing.metering): what one unit of
# the first is worth in the second, "USD:INR=84.10,USD:EUR=0.92". Usage in a currency with no rate to the
# organization's is left off its invoice, and the monthly run logs an error naming the pair.
USAGE_EXCHANGE_RATES = {
    tuple(pair.strip().upper().split(":", 1)): Decimal(rate)
    for pair, rate in (item.split("=", 1) for item in env.list("USAGE_EXCHANGE_RATES", default=[]) if item.strip())
}

# Campaigns ------------------------------------------------------------------------------------------------------
CELERY_BEAT_SCHEDULE.update(
    {
        # Buyer deliveries whose retry is due, and sales whose delivery task was lost.
        "campaigns-sweep-sale-deliveries": {"task": "campaigns.tasks.sweep_sale_deliveries", "schedule": 60},
        # Unsold leads of campaigns that redistribute, and leads posted while their processing failed.
        "campaigns-redistribute-leads": {"task": "campaigns.tasks.redistribute_leads", "schedule": 60 * 15},
        # Daily budgets resume after each organization's midnight: every quarter hour catches every time zone's.
        "campaigns-enforce-budgets": {
            "task": "campaigns.tasks.enforce_campaign_budgets",
            "schedule": crontab(minute="*/15"),
        },
    }
)
# Support tickets have a status of their own too.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "SupportTicketStatusEnum": "support.constants.TicketStatus",
        "SupportTicketCategoryEnum": "support.constants.TicketCategory",
    }
)

# Operations -------------------------------------------------------------------------------------------------------
# Prometheus metrics at /metrics, for a scraper that sends `Authorization: Bearer <METRICS_TOKEN>`; unset, the
# endpoint answers 404. Workers on machines without a web process can serve theirs on METRICS_WORKER_PORT.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)
METRICS_WORKER_ADDRESS = env("METRICS_WORKER_ADDRESS", default="127.0.0.1")
# Sentry: nothing is sent (the SDK is not even initialized) without a DSN.
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default=env("DJANGO_ENV", default="dev"))
SENTRY_RELEASE = env("SENTRY_RELEASE", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from leadflow.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )

# Conversations ----------------------------------------------------------------------------------------------------
# WhatsApp through Meta's Cloud API (per organization, or this platform-wide token): the Graph API's base and version,
# the app secret that signs webhooks (X-Hub-Signature-256) and the verify token of the subscription handshake.
WHATSAPP_GRAPH_URL = env("WHATSAPP_GRAPH_URL", default="https://graph.facebook.com").rstrip("/")
WHATSAPP_GRAPH_VERSION = env("WHATSAPP_GRAPH_VERSION", default="21.0").lstrip("v")
WHATSAPP_APP_SECRET = env("WHATSAPP_APP_SECRET", default="")
WHATSAPP_VERIFY_TOKEN = env("WHATSAPP_VERIFY_TOKEN", default="")
WHATSAPP_ACCESS_TOKEN = env("WHATSAPP_ACCESS_TOKEN", default="")
WHATSAPP_TIMEOUT_S = env.float("WHATSAPP_TIMEOUT_S", default=10.0)
# Twilio's status callbacks (delivered, read) point at SITE_URL; off, message statuses stop at what the send said.
TWILIO_STATUS_CALLBACKS = env.bool("TWILIO_STATUS_CALLBACKS", default=True)
# Team notifications over WhatsApp go out as this approved template (one variable: the text) of the organization.
WHATSAPP_NOTIFICATION_TEMPLATE = env("WHATSAPP_NOTIFICATION_TEMPLATE", default="leadflow_notification")
# The daily summary goes out at this hour of each organization's own time zone.
NOTIFICATION_DIGEST_HOUR = env.int("NOTIFICATION_DIGEST_HOUR", default=8)
# AI assistance (reply suggestions, the AI lead scorer): off without a key. OPENAI_BASE_URL points the SDK at any
# OpenAI-compatible server; costs per million tokens (USD) count against each organization's monthly budget.
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_S = env.float("OPENAI_TIMEOUT_S", default=20.0)
OPENAI_COST_PER_MILLION_INPUT = Decimal(env("OPENAI_COST_PER_MILLION_INPUT", default="0.15"))
OPENAI_COST_PER_MILLION_OUTPUT = Decimal(env("OPENAI_COST_PER_MILLION_OUTPUT", default="0.60"))
CELERY_BEAT_SCHEDULE.update(
    {
        # Messages whose quiet hours or retry wait ended, and provider webhooks whose processing failed or was lost.
        "messaging-send-due-messages": {"task": "messaging.tasks.send_due_messages", "schedule": 60},
        "messaging-sweep-provider-events": {"task": "messaging.tasks.sweep_provider_events", "schedule": 60 * 5},
        # Automations: waits that ended, and the "no reply / no activity for N hours" triggers.
        "messaging-resume-automations": {"task": "messaging.tasks.resume_due_automations", "schedule": 60},
        "messaging-idle-triggers": {"task": "messaging.tasks.run_idle_triggers", "schedule": 60 * 10},
        # Speed to lead: leads not contacted within their organization's target.
        "messaging-sla-escalations": {"task": "messaging.tasks.escalate_sla_breaches", "schedule": 60},
        # The daily summary, sent to each organization at NOTIFICATION_DIGEST_HOUR of its time zone.
        "messaging-daily-summaries": {"task": "messaging.tasks.send_daily_summaries", "schedule": crontab(minute=5)},
    }
)
# Messaging: one enum per meaning in the API schema (usage records meter webhooks too; templates have channels).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "UsageChannelEnum": "messaging.constants.Channel",
        "MessageChannelEnum": "messaging.constants.MessageChannel",
        "NotificationChannelEnum": "messaging.constants.NotificationChannel",
        "AutomationActionEnum": "messaging.constants.AutomationAction",
    }
)

# Analytics: the rollups every report reads, refreshed every 5 minutes (live windows and days marked stale).
CELERY_BEAT_SCHEDULE.update(
    {"analytics-refresh-rollups": {"task": "analytics.tasks.refresh_rollups", "schedule": 60 * 5}}
)
