"""Backups: pg_dump of the demo, restored into an empty database, finds every row unchanged."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from geo.db import backup, migrate
from geo.db.engine import make_engine
from geo.errors import Conflict, InvalidInput, SetupError
from geo.settings import Settings


@pytest.fixture
def empty_engine(server) -> Iterator[Engine]:
    """An engine on a new database with PostGIS and nothing else (no migrations)."""
    name = f"riskgrid_restore_{uuid.uuid4().hex[:8]}"
    engine = make_engine(Settings(database_url=server.create(name), warm_up=False))
    yield engine
    engine.dispose()
    server.drop(name)


def _state(engine: Engine) -> tuple[dict[str, int], dict[str, str]]:
    with engine.connect() as conn:
        return backup.row_counts(conn), backup.checksums(conn)


def test_demo_round_trip_keeps_every_row_and_refuses_a_database_with_data(
    demo_client, demo_engine, empty_engine, tmp_path
):
    # demo_client stored its admin user (and token); the demo load wrote audit rows.
    before = _state(demo_engine)
    assert before[0]["reports"] > 0 and before[0]["users"] > 0 and before[0]["audit_log"] > 0
    path = tmp_path / "demo.dump"
    t0 = time.perf_counter()
    made = backup.backup(demo_engine, path)
    assert path.stat().st_mode & 0o777 == 0o600 and made.size_bytes == path.stat().st_size
    assert made.counts == before[0]
    assert [p.name for p in tmp_path.iterdir()] == ["demo.dump"]  # no temporary file left

    done = backup.restore(empty_engine, path)
    assert done.counts == before[0] and not done.needs_upgrade
    assert done.revision == migrate.head()
    assert _state(empty_engine) == before
    assert time.perf_counter() - t0 < 20

    with pytest.raises(Conflict, match="--force"):
        backup.restore(empty_engine, path)
    # --force drops and recreates the tables: the audit log's triggers refuse DELETE and
    # TRUNCATE, so a restore that emptied it any other way would fail here.
    again = backup.restore(empty_engine, path, force=True)
    assert again.counts == before[0] and _state(empty_engine) == before
    with empty_engine.connect() as conn:
        triggers = conn.execute(
            text("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass")
        ).scalar_one()
    assert triggers == 2  # the append-only guards came back with the table


def test_a_failed_dump_leaves_no_half_file(db, tmp_path):
    # A pg_dump that writes half a file and fails: nothing may appear at FILE.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("initdb", "pg_ctl"):
        (tools / name).write_text("#!/bin/sh\nexit 0\n")
    (tools / "pg_dump").write_text(
        '#!/bin/sh\nwhile [ "$1" != "-f" ]; do shift; done\n'
        'printf half > "$2"\necho "pg_dump: error: disk full" >&2\nexit 1\n'
    )
    for tool in tools.iterdir():
        tool.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SetupError, match="disk full"):
        backup.backup(db, out / "x.dump", bin_dir=tools)
    assert list(out.iterdir()) == []


def test_restore_refuses_a_file_that_is_not_a_backup(empty_engine, tmp_path):
    path = tmp_path / "notes.dump"
    path.write_text("not a dump")
    with pytest.raises(InvalidInput, match="not a pg_dump"):
        backup.restore(empty_engine, path)


def test_libpq_conninfo_carries_no_password(db):
    conninfo, env = backup._libpq(db.url.render_as_string(hide_password=False))
    password = db.url.password
    assert password and password not in conninfo and env["PGPASSWORD"] == password


def test_backup_of_a_folder_is_refused(db, tmp_path):
    with pytest.raises(InvalidInput, match="folder"):
        backup.backup(db, tmp_path)


def _newer_schema(engine: Engine) -> None:
    """Give the database a table the backup does not have, referencing one it does."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE grid_notes (code text REFERENCES grids (code))"))


def test_restore_in_place_refuses_tables_the_backup_lacks(db, empty_engine, tmp_path):
    path = tmp_path / "empty.dump"
    backup.backup(db, path)
    migrate.upgrade(empty_engine)
    _newer_schema(empty_engine)
    with pytest.raises(Conflict, match="grid_notes"):
        backup.restore(empty_engine, path)


def test_restore_in_the_project_cluster_replaces_the_whole_database(
    server, db, empty_engine, tmp_path
):
    if server.cluster is None:
        pytest.fail("runs on the tests' own cluster (DATABASE_URL unset) only")
    from tests.factories import login_as

    login_as(db, "admin", username="swap-admin")
    path = tmp_path / "one-user.dump"
    backup.backup(db, path)
    migrate.upgrade(empty_engine)
    _newer_schema(empty_engine)
    done = backup.restore(empty_engine, path, cluster=server.cluster)
    assert done.counts["users"] == 1 and not done.needs_upgrade
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('grid_notes')")).scalar() is None
    assert _state(empty_engine) == _state(db)
