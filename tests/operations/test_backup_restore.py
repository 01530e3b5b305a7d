"""scripts/backup.sh and scripts/restore.sh for real: pg_dump the test database, pg_restore it into a scratch
database, and read the rows back from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from leads.intake.pipeline import lead_intake
from tests.factories import OrganizationFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("pg_dump"), reason="needs pg_dump and pg_restore (postgresql-client)"),
]
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _url(name: str) -> str:
    settings = connection.settings_dict
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    return f"postgres://{settings['USER']}{password}@{host}:{settings.get('PORT') or 5432}/{name}"


def _run(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own scripts, with arguments this test builds
        [shutil.which("bash") or "/bin/bash", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


@pytest.fixture
def scratch_database():
    name = f"leadflow_restore_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_restores_into_a_scratch_database(tmp_path, scratch_database):
    organization = OrganizationFactory(name="Backed Up Realty", slug="backed-up-realty")
    for n in range(3):
        lead_intake(organization=organization, source="api", payload={"email": f"restored{n}@example.com"})
    source_url = _url(connection.settings_dict["NAME"])

    dump = tmp_path / "leadflow.dump"
    backup = _run(SCRIPTS / "backup.sh", dump, DATABASE_URL=source_url)
    assert backup.returncode == 0, backup.stderr
    assert backup.stdout.strip() == str(dump)
    assert dump.stat().st_size > 0 and not Path(f"{dump}.partial").exists()

    target = _url(scratch_database)
    restore = _run(SCRIPTS / "restore.sh", dump, target, DATABASE_URL="")
    assert restore.returncode == 0, restore.stderr
    assert f"Created database {scratch_database}." in restore.stdout

    with psycopg.connect(target) as restored:
        leads = restored.execute(
            "SELECT l.email FROM leads_lead l JOIN accounts_organization o ON o.id = l.organization_id "
            "WHERE o.slug = 'backed-up-realty' ORDER BY l.email"
        ).fetchall()
        migrations = restored.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
    assert [email for (email,) in leads] == [f"restored{n}@example.com" for n in range(3)]
    assert migrations > 0  # the schema's history came back with the rows, so `migrate` knows where it stands

    # A database that already has tables is refused without --clean, and replaced with it.
    refused = _run(SCRIPTS / "restore.sh", dump, target, DATABASE_URL="")
    assert refused.returncode == 1 and "pass --clean" in refused.stderr
    replaced = _run(SCRIPTS / "restore.sh", "--clean", dump, target, DATABASE_URL="")
    assert replaced.returncode == 0, replaced.stderr
    with psycopg.connect(target) as restored:
        assert restored.execute("SELECT count(*) FROM leads_lead").fetchone()[0] >= 3


def test_backups_into_the_backup_directory_keep_the_newest(tmp_path):
    source_url = _url(connection.settings_dict["NAME"])
    for stale in ("leadflow-20200101T000000Z.dump", "leadflow-20200102T000000Z.dump"):
        (tmp_path / stale).write_bytes(b"old")
    made = _run(SCRIPTS / "backup.sh", DATABASE_URL=source_url, BACKUP_DIR=str(tmp_path), BACKUP_KEEP="2")
    assert made.returncode == 0, made.stderr
    kept = sorted(path.name for path in tmp_path.glob("leadflow-*.dump"))
    assert len(kept) == 2 and kept[0] == "leadflow-20200102T000000Z.dump"
    assert Path(made.stdout.strip()).name == kept[1]
