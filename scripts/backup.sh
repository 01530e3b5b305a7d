#!/usr/bin/env bash
# Back up LeadFlow's PostgreSQL database with pg_dump (custom format: compressed, restorable table by table).
#
#   scripts/backup.sh [OUTPUT_FILE]
#
# The database is DATABASE_URL (from the environment, else .env, else the local default). Without OUTPUT_FILE the
# dump goes to $BACKUP_DIR (./backups) as leadflow-<UTC time>.dump, and only the newest $BACKUP_KEEP (14) dumps
# there are kept. The dump is written to a .partial file, checked with pg_restore --list, then renamed: a file
# without .partial is a complete, readable archive. Prints the file's path. Needs pg_dump of the server's major
# version or newer (Debian: postgresql-client).
set -euo pipefail
cd "$(dirname "$0")/.."

database_url="${DATABASE_URL:-}"
if [[ -z "$database_url" && -f .env ]]; then
  database_url=$(sed -n 's/^DATABASE_URL=//p' .env | tail -n 1)
fi
database_url="${database_url:-postgres://postgres@127.0.0.1:5432/leadflow}"

backup_dir="${BACKUP_DIR:-backups}"
keep="${BACKUP_KEEP:-14}"
output="${1:-$backup_dir/leadflow-$(date -u +%Y%m%dT%H%M%SZ).dump}"
mkdir -p "$(dirname "$output")"
partial="$output.partial"
trap 'rm -f "$partial"' EXIT

# --no-owner/--no-privileges: the dump restores into any role's database (a scratch copy, a new server).
pg_dump --format=custom --compress=6 --no-owner --no-privileges --file "$partial" --dbname "$database_url"
pg_restore --list "$partial" >/dev/null
mv "$partial" "$output"
trap - EXIT

if [[ $# -eq 0 && "$keep" -gt 0 ]]; then
  # Newest first by name (the UTC timestamp sorts): drop all but the newest $keep.
  ls -1 "$backup_dir"/leadflow-*.dump 2>/dev/null | sort -r | tail -n +"$((keep + 1))" | xargs -r rm -f
fi
echo "$output"
