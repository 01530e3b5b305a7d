"""Encryption at rest for integration credentials (page tokens, keys, secrets).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with keys from ``INTEGRATIONS_ENCRYPTION_KEY``: a
comma-separated list, newest first. The first key encrypts; every key decrypts, so a key is rotated by putting a new
one in front, re-encrypting (``reencrypt``, i.e. ``MultiFernet.rotate``), then
dropping the old one. Without the setting (development, tests) the key is derived from ``SECRET_KEY``; the deploy
check ``integrations.W001`` warns about that, because rotating SECRET_KEY would then make every stored token
unreadable.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class CredentialsUnreadable(Exception):
    """The stored ciphertext does not open with any configured key (a key was dropped or changed)."""


def derived_key(secret_key: str) -> str:
    digest = hashlib.sha256(b"leadflow.integrations.credentials:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> tuple[str, ...]:
    raw = getattr(settings, "INTEGRATIONS_ENCRYPTION_KEY", "") or ""
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    return keys or (derived_key(settings.SECRET_KEY),)


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt_json(value: dict[str, Any]) -> str:
    return _fernet(configured_keys()).encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    try:
        return json.loads(_fernet(configured_keys()).decrypt(token.encode()))
    except (InvalidToken, ValueError) as error:
        raise CredentialsUnreadable("credentials cannot be decrypted with INTEGRATIONS_ENCRYPTION_KEY") from error


def reencrypt(token: str) -> str:
    """The same plaintext under the newest key (``MultiFernet.rotate``)."""
    return _fernet(configured_keys()).rotate(token.encode()).decode()
