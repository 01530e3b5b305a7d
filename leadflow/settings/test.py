"""pytest: real PostgreSQL and Redis (started by `make test`), fast hashing, in-memory email."""

import os

from .base import *  # noqa: F403
from .base import env

DEBUG = False
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/leadflow")}
DATABASES["default"]["OPTIONS"] = {"options": "-c jit=off"}  # as shipped (base.py)
# The read-replica router runs in every test, its replica being the test database itself (a mirror: its own
# connection, so it sees committed rows only, like a real replica).
DATABASES["replica"] = {**DATABASES["default"], "OPTIONS": {"options": "-c jit=off"}, "TEST": {"MIRROR": "default"}}
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/1")
# Each pytest run (and each xdist worker) gets its own key space, so parallel runs never see each other.
_RUN_PREFIX = f"leadflow-test-{os.getpid()}"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": _RUN_PREFIX,
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "leadflow.channel_layer.ResilientRedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": _RUN_PREFIX},
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Serve static files straight from the app folders: tests never run collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
ACCOUNT_EMAIL_VERIFICATION = "optional"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}}
