#!/usr/bin/env bash
# Restore a scripts/backup.sh dump into a PostgreSQL database.
#
#   scripts/restore.sh [--clean] BACKUP_FILE [TARGET_DATABASE_URL]
#
# TARGET_DATABASE_URL defaults to DATABASE_URL (environment, else .env). The target database is created when it
# does not exist. A target that already has tables is refused unless --clean is given, which drops the objects the
# dump contains first — so a mistyped URL never overwrites a live database by accident. The restore runs in one
# transaction (all or nothing) and stops at the first error. Afterwards it prints how many organizations, users and
# leads the restored database holds. Then run `manage.py migrate` if the code is newer than the dump.
set -euo pipefail
cd "$(dirname "$0")/.."

clean=""
if [[ "${1:-}" == "--clean" ]]; then clean="yes"; shift; fi
backup="${1:?usage: scripts/restore.sh [--clean] BACKUP_FILE [TARGET_DATABASE_URL]}"
[[ -r "$backup" ]] || { echo "Cannot read $backup." >&2; exit 1; }

target="${2:-${DATABASE_URL:-}}"
if [[ -z "$target" && -f .env ]]; then
  target=$(sed -n 's/^DATABASE_URL=//p' .env | tail -n 1)
fi
[[ -n "$target" ]] || { echo "Name the target database (TARGET_DATABASE_URL or DATABASE_URL)." >&2; exit 1; }

# The database's name, and the same server's maintenance database to create it from.
read -r name maintenance < <(python3 - "$target" <<'PY'
import sys
from urllib.parse import urlsplit, urlunsplit
url = urlsplit(sys.argv[1])
print(url.path.lstrip("/"), urlunsplit(url._replace(path="/postgres")))
PY
)
[[ -n "$name" ]] || { echo "The target URL names no database: $target" >&2; exit 1; }

exists=$(psql "$maintenance" -tAX -v ON_ERROR_STOP=1 -v name="$name" <<'SQL'
SELECT count(*) FROM pg_database WHERE datname = :'name';
SQL
)
if [[ "$exists" == "0" ]]; then
  psql "$maintenance" -qX -v ON_ERROR_STOP=1 -v name="$name" <<'SQL'
CREATE DATABASE :"name";
SQL
  echo "Created database $name."
fi

tables=$(psql "$target" -tAX -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [[ "$tables" != "0" && -z "$clean" ]]; then
  echo "Database $name already has $tables tables: pass --clean to replace what the dump contains." >&2
  exit 1
fi

pg_restore --no-owner --no-privileges --exit-on-error --single-transaction ${clean:+--clean --if-exists} \
  --dbname "$target" "$backup"

psql "$target" -tAX -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'organizations ' || (SELECT count(*) FROM accounts_organization)
    || ', users ' || (SELECT count(*) FROM accounts_user)
    || ', leads ' || (SELECT count(*) FROM leads_lead);
SQL
echo "Restored $backup into $name."
