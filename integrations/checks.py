"""Deployment checks of the integrations app."""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_integrations_encryption_key(app_configs, **kwargs):
    raw = getattr(settings, "INTEGRATIONS_ENCRYPTION_KEY", "") or ""
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        return [
            Warning(
                "INTEGRATIONS_ENCRYPTION_KEY is not set: integration credentials are encrypted with a key derived "
                "from SECRET_KEY, so rotating SECRET_KEY would make every stored token unreadable.",
                hint="Generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and set it in the environment.",
                id="integrations.W001",
            )
        ]
    problems = []
    for index, key in enumerate(keys):
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                Error(
                    f"INTEGRATIONS_ENCRYPTION_KEY entry {index + 1} is not a Fernet key (32 url-safe base64 bytes).",
                    id="integrations.E001",
                )
            )
    return problems
