#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer before the tests run: starts them when installed but stopped,
# installs them with apt on Debian when missing, and otherwise stops with one sentence saying what is missing.
set -uo pipefail

pg_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/leadflow}"
redis_url="${REDIS_URL:-redis://127.0.0.1:6379/1}"
read -r pg_host pg_port < <(python3 - "$pg_url" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1]); print(u.hostname or "127.0.0.1", u.port or 5432)
PY
)
read -r redis_host redis_port < <(python3 - "$redis_url" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1]); print(u.hostname or "127.0.0.1", u.port or 6379)
PY
)

answers() {  # host port
  python3 -c "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 1); s.close()" "$1" "$2" 2>/dev/null
}

wait_for() {  # name host port
  for _ in $(seq 1 30); do answers "$2" "$3" && return 0; sleep 1; done
  return 1
}

local_host() { [[ "$1" == "127.0.0.1" || "$1" == "localhost" || "$1" == "::1" ]]; }

can_apt() { command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; }

start_postgres() {
  if ! command -v pg_ctlcluster >/dev/null && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    can_apt || return 1
    echo "Installing PostgreSQL with apt…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$version" ]] || return 1
  # Tests connect as postgres over TCP without a password, as CI's machines do.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if [[ -w "$hba" ]] && ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || service postgresql start >/dev/null 2>&1 || true
}

start_redis() {
  if ! command -v redis-server >/dev/null; then
    can_apt || return 1
    echo "Installing Redis with apt…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null || return 1
  fi
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/leadflow-test.log >/dev/null 2>&1 || true
}

if ! answers "$pg_host" "$pg_port"; then
  if local_host "$pg_host"; then start_postgres; fi
  wait_for PostgreSQL "$pg_host" "$pg_port" || {
    echo "PostgreSQL is not reachable at $pg_host:$pg_port and could not be started or installed: install PostgreSQL or set DATABASE_URL." >&2
    exit 1
  }
fi

if ! answers "$redis_host" "$redis_port"; then
  if local_host "$redis_host"; then start_redis; fi
  wait_for Redis "$redis_host" "$redis_port" || {
    echo "Redis is not reachable at $redis_host:$redis_port and could not be started or installed: install Redis or set REDIS_URL." >&2
    exit 1
  }
fi
echo "PostgreSQL ($pg_host:$pg_port) and Redis ($redis_host:$redis_port) are up."
