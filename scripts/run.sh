#!/usr/bin/env bash
# `make run`: migrate, seed the demo workspace, and serve LeadFlow on HOST:PORT.
# With PostgreSQL and Redis (from DATABASE_URL/REDIS_URL, or found on their default local ports) it runs the
# ASGI server, a Celery worker and celery beat under honcho. PostgreSQL is required (leads use its full-text and
# trigram search); scripts/ensure_services.sh starts or installs it (and Redis) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"
PY=.venv/bin/python

answers() { python3 -c "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 1); s.close()" "$1" "$2" 2>/dev/null; }

if [[ -z "${DATABASE_URL:-}" ]]; then
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/leadflow" REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}" bash scripts/ensure_services.sh
fi
if [[ -z "${DATABASE_URL:-}" ]] && answers 127.0.0.1 5432; then
  if $PY - <<'PY'
import psycopg
try:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'leadflow'").fetchone():
            conn.execute("CREATE DATABASE leadflow")
except psycopg.Error as error:
    raise SystemExit(f"PostgreSQL answered but refused us ({error}); set DATABASE_URL to a database LeadFlow can use.")
PY
  then export DATABASE_URL="postgres://postgres@127.0.0.1:5432/leadflow"; else exit 1; fi
fi
if [[ -z "${DATABASE_URL:-}" ]]; then
  echo "LeadFlow needs PostgreSQL: start it on 127.0.0.1:5432 or set DATABASE_URL." >&2
  exit 1
fi
if [[ -z "${REDIS_URL:-}" ]] && answers 127.0.0.1 6379; then
  export REDIS_URL="redis://127.0.0.1:6379/0"
fi

echo "Database: ${DATABASE_URL}"
echo "Redis:    ${REDIS_URL:-not used (in-memory channel layer, Celery tasks run eagerly)}"
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput -v 0
$PY manage.py seed_plans
$PY manage.py seed_demo

cat <<MSG

  LeadFlow is starting at http://$HOST:$PORT/
  Demo login: demo@leadflow.local / ${DEMO_PASSWORD:-leadflow-demo}
  API docs:   http://$HOST:$PORT/api/docs/     Operator console: http://$HOST:$PORT/admin/ (manage.py createsuperuser)

MSG

if [[ -n "${REDIS_URL:-}" && -n "${DATABASE_URL:-}" ]]; then
  exec .venv/bin/honcho start -f Procfile web worker beat
fi
exec .venv/bin/daphne -b "$HOST" -p "$PORT" leadflow.asgi:application
