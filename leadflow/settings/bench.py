"""`make bench`: the production settings, served locally over plain HTTP against the `leadflow_bench` database.

Only what running on loopback needs differs from production (no TLS redirect, local hosts, a throwaway secret);
the database OPTIONS are production's own, untouched, so queries are measured the way they ship.
"""

import os

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadflow_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.setdefault("CHANNELS_PREFIX", "leadflow-bench")

from .production import *  # noqa: F403
from .production import DATABASES, MIDDLEWARE, env

# `make bench` drops and recreates this database: refuse anything that is not clearly a benchmark database.
if not DATABASES["default"]["NAME"].endswith("_bench"):
    raise ImproperlyConfigured(
        f"leadflow.settings.bench needs a DATABASE_URL whose database name ends in _bench, not "
        f"“{DATABASES['default']['NAME']}”: the benchmark drops and recreates it."
    )
# Persistent connections, as a production deployment behind gunicorn would run.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("BENCH_CONN_MAX_AGE", default=600)

SECURE_SSL_REDIRECT = False
ROOT_URLCONF = "bench.urls"
WSGI_APPLICATION = "bench.wsgi.application"

# Counts the SQL of every request into an `X-Bench-SQL-Count` header; writes one request's statements to a file
# when asked (`X-Bench-Capture: <label>`). Bench-only: production never loads it.
MIDDLEWARE = ["bench.middleware.SqlCountMiddleware", *MIDDLEWARE]
BENCH_CAPTURE_DIR = env("BENCH_CAPTURE_DIR", default="")
