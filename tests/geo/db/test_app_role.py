"""riskgrid_app (migration 0012): a login in it works the whole service through the real code
paths (imports, the loop, a letter, a visit, the evaluation, the audit log) and is refused
everything an owner or a superuser could do to the audit log, the schema or the server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import errors
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from boundaries.importer import ImportOptions, import_file
from geo.db import backup, migrate
from geo.db.engine import make_engine
from geo.db.privileges import APP_ROLE, login_of
from geo.reports.bulk import ANALYZE_AFTER
from geo.settings import ImportSettings, LetterSettings, PhotoSettings, Settings
from tests.factories import after_photo, clients_for, grid_frame, login_as, put_points, tiled, write
from tests.geo.campaigns.place import A1, at, build, campaign_body

EVERYDAY = {"SELECT", "INSERT", "UPDATE", "DELETE"}
# Every table's rights; a table missing here fails test_every_table_has_the_rights_listed_here.
RIGHTS = {
    "alembic_version": {"SELECT"},
    "audit_log": {"SELECT", "INSERT"},
    "report_events": {"SELECT", "INSERT"},  # and UPDATE of handler_id alone
    "visits": {"SELECT", "INSERT"},
    "visit_photos": {"SELECT", "INSERT"},
    **{
        t: EVERYDAY
        for t in (
            "areas",
            "auth_tokens",
            "boundary_versions",
            "campaign_targets",
            "campaigns",
            "grids",
            "households",
            "letter_attachments",
            "letter_numbers",
            "letters",
            "notifications",
            "outbox",
            "report_loops",
            "report_photos",
            "reports",
            "risk_layers",
            "risk_parts",
            "user_districts",
            "user_grids",
            "users",
            "visit_counts",
            "webhook_deliveries",
        )
    },
}
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
OWN_TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""


def _login(db: Engine) -> tuple[str, str]:
    """Create a LOGIN member of riskgrid_app, named uniquely (roles are the server's)."""
    name, password = f"rg_test_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    with db.begin() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {APP_ROLE}"))
    return name, password


def _drop(db: Engine, name: str) -> None:
    with db.begin() as conn:
        conn.execute(text(f"DROP ROLE IF EXISTS {name}"))


@pytest.fixture
def member(db: Engine, settings: Settings) -> Iterator[Engine]:
    """An engine on the emptied test database as a login in riskgrid_app and nothing more."""
    name, password = _login(db)
    url = make_url(settings.database_url or "").set(username=name, password=password)
    engine = make_engine(settings, url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        _drop(db, name)


def test_the_group_role_and_its_login_are_nothing_more(db, member):
    with db.connect() as conn:
        role = conn.execute(
            text(
                "SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls, "
                "has_schema_privilege(oid, 'public', 'CREATE'), "
                "(SELECT count(*) FROM pg_class WHERE relowner = r.oid) "
                "FROM pg_roles r WHERE rolname = :r"
            ),
            {"r": APP_ROLE},
        ).one()
        assert tuple(role) == (False, False, False, False, False, False, 0)
        public_creates = "SELECT has_schema_privilege('public', 'public', 'CREATE')"
        assert conn.execute(text(public_creates)).scalar() is False
    with member.connect() as conn:
        login = login_of(conn)
    assert login is not None and login.least_privilege
    assert not login.superuser and not login.owns_tables and login.in_app_role


def test_every_table_has_the_rights_listed_here(db):
    with db.connect() as conn:
        tables = sorted(conn.execute(text(OWN_TABLES)).scalars())
        got = {
            t: {
                p
                for p in PRIVILEGES
                if conn.execute(
                    text("SELECT has_table_privilege(:r, :t, :p)"), {"r": APP_ROLE, "t": t, "p": p}
                ).scalar()
            }
            for t in tables
        }
        columns = set(
            conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'report_events' "
                    "AND has_column_privilege(:r, 'report_events', column_name, 'UPDATE')"
                ),
                {"r": APP_ROLE},
            ).scalars()
        )
        sequences = conn.execute(
            text(
                "SELECT bool_and(has_sequence_privilege(:r, c.oid, 'USAGE')) FROM pg_class c "
                "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'"
            ),
            {"r": APP_ROLE},
        ).scalar()
        spatial_ref_sys = [
            p
            for p in PRIVILEGES
            if p != "SELECT"
            and conn.execute(
                text("SELECT has_table_privilege(:r, 'spatial_ref_sys', :p)"),
                {"r": APP_ROLE, "p": p},
            ).scalar()
        ]
    assert got == {t: RIGHTS.get(t, {"(not listed in RIGHTS)"}) for t in tables}
    assert columns == {"handler_id"}
    assert sequences is True
    assert spatial_ref_sys == []


def test_a_table_a_later_migration_adds_gets_the_everyday_rights(db):
    with db.connect() as conn, conn.begin():
        conn.execute(text("CREATE TABLE later_table (id serial PRIMARY KEY, note text)"))
        rights = {
            p
            for p in PRIVILEGES
            if conn.execute(
                text("SELECT has_table_privilege(:r, 'later_table', :p)"), {"r": APP_ROLE, "p": p}
            ).scalar()
        }
        sequence = conn.execute(
            text("SELECT has_sequence_privilege(:r, 'later_table_id_seq', 'USAGE')"),
            {"r": APP_ROLE},
        ).scalar()
        conn.rollback()
    assert rights == EVERYDAY and sequence is True


@pytest.fixture
def app_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "letters": LetterSettings(folder=tmp_path / "letters"),
            "photos": PhotoSettings(folder=tmp_path / "photos"),
        }
    )


def _ok(r) -> dict:
    assert r.status_code in (200, 201), r.text
    return r.json()


def _analyses(db: Engine, *tables: str) -> dict[str, int]:
    """Return how often each table was analysed by hand (ANALYZE, not autovacuum)."""
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(:t)"),
            {"t": list(tables)},
        )
        return {name: int(n) for name, n in rows}


def test_the_service_works_as_a_member_of_riskgrid_app(db, member, app_settings, tmp_path):
    # Areas, grids and households imported as the member: temporary tables, COPY, upserts,
    # and the statistics refreshed through refresh_statistics().
    before = _analyses(db, "areas", "grids")
    build(member, tmp_path)
    after = _analyses(db, "areas", "grids")
    assert all(after[t] > before[t] for t in before), (before, after)
    tokens = {
        "worker": login_as(member, "worker", "wang-rg", grids=(A1,)),
        "dispatcher": login_as(member, "dispatcher", "zhao-rg"),
    }
    with clients_for(create_app(app_settings, engine=member), tokens) as c:
        w, d = c["worker"], c["dispatcher"]
        lon, lat = at(A1)
        body = {"lon": lon, "lat": lat, "theme": "flood", "category": "waterlogging"}
        rid = _ok(w.post("/api/v1/reports", json=body))["id"]
        _ok(d.post(f"/api/v1/reports/{rid}/transitions", json={"to": "accepted"}))
        dept = _ok(d.post(f"/api/v1/reports/{rid}/transitions", json={"to": "dispatched"}))[
            "department"
        ]
        handler = login_as(member, "department", "qian-rg", department=dept)
        with clients_for(w.app, {"handler": handler}) as h:
            move = f"/api/v1/reports/{rid}/transitions"
            _ok(h["handler"].post(move, json={"to": "in_progress"}))
            after_photo(member, rid)
            _ok(h["handler"].post(move, json={"to": "resolved", "level": "community"}))
        done = _ok(w.post(f"/api/v1/reports/{rid}/transitions", json={"to": "verified"}))
        assert done["status"] == "verified" and len(done["history"]) == 6
        # A letter drafted and issued (its number, notifications and outbox rows).
        letter = _ok(d.post("/api/v1/letters", json={"department": dept}))
        issued = _ok(d.post(f"{letter['url']}/issue"))
        assert issued["status"] == "issued" and issued["number"].endswith("第1号")
        # A campaign launched and a visit recorded (its counts kept by the trigger).
        _ok(d.post("/api/v1/campaigns", json=campaign_body()))
        _ok(d.post("/api/v1/campaigns/CA11/launch"))
        visit = {"id": str(uuid.uuid4()), "campaign": "CA11", "lon": lon, "lat": lat}
        visit["answers"] = {"low_lying": True, "to_relocate": 2, "households_moved": 1}
        assert _ok(w.post("/api/v1/visits", json=visit))["grid"]["code"] == A1
        # The evaluation, computed from the loop's rows.
        units = _ok(d.get("/api/v1/evaluation", params={"by": "department"}))["units"]
        row = next(u for u in units if u["unit"] == dept)
        assert (row["closed"], row["dispatched"], row["resolved"]) == (1, 1, 1)
    # A report's removal takes its history with it, though the member may not delete events:
    # the foreign key's cascade runs with the owner's rights.
    with member.begin() as conn:
        conn.execute(text("DELETE FROM reports WHERE id = :id"), {"id": rid})
    with db.connect() as conn:
        actions = set(conn.execute(text("SELECT action FROM audit_log")).scalars())
        counted = conn.execute(text("SELECT sum(visits) FROM visit_counts")).scalar()
        events = conn.execute(
            text("SELECT count(*) FROM report_events WHERE report_id = :id"), {"id": rid}
        ).scalar()
    assert events == 0
    assert {
        "report.create",
        "report.transition",
        "letter.draft",
        "letter.issue",
        "campaign.create",
        "visit.create",
    } <= actions
    assert counted == 1


def _refused(member: Engine, sql: str) -> BaseException:
    with pytest.raises(DBAPIError) as caught, member.begin() as conn:
        conn.execute(text(sql))
    return caught.value.orig


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "SET session_replication_role = replica",
        "CREATE TABLE public.planted (id int)",
        "DROP TABLE reports",
        "SELECT pg_read_file('/etc/passwd')",
        "COPY reports TO '/tmp/riskgrid-reports.csv'",
        "UPDATE report_events SET to_status = 'verified'",
        "DELETE FROM report_events",
        "DELETE FROM visits",
        "TRUNCATE reports",
        "ALTER ROLE CURRENT_USER SUPERUSER",
        "CREATE ROLE rg_planted LOGIN",
    ],
)
def test_a_member_is_refused(member, sql):
    refused = _refused(member, sql)
    assert isinstance(refused, errors.InsufficientPrivilege), repr(refused)


def test_statistics_are_refreshed_for_riskgrid_tables_only(db, member):
    before = _analyses(db, "reports", "report_events", "audit_log")
    with member.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE scratch (id int)"))  # the importers' staging
        conn.execute(text("SELECT refresh_statistics('reports', 'report_events')"))
    after = _analyses(db, "reports", "report_events", "audit_log")
    assert {t: after[t] - before[t] for t in before} == {
        "reports": 1,
        "report_events": 1,
        "audit_log": 0,
    }
    for other in ("spatial_ref_sys", "pg_authid", "scratch"):
        refused = _refused(member, f"SELECT refresh_statistics('{other}')")
        assert isinstance(refused, errors.InvalidParameterValue), repr(refused)
        assert "not a table of riskgrid" in str(refused)


def test_bulk_loads_refresh_statistics_without_a_warning(db, member, tmp_path):
    """ANALYZE as a member would warn "only table or database owner can analyze it" and skip;
    the imports refresh statistics through the owner's function instead."""
    notices: list[str] = []

    @event.listens_for(member, "connect")
    def _listen(dbapi_connection, _record) -> None:
        dbapi_connection.add_notice_handler(
            lambda d: notices.append(f"{d.severity}: {d.message_primary}")
        )

    before = _analyses(db, "grids", "reports", "report_events", "report_loops")
    grids = write(grid_frame(tiled(3)), tmp_path / "g.geojson")
    import_file(member, grids, ImportOptions(), ImportSettings())
    put_points(member, [(100 + i % 40 * 30, 100 + i // 40 * 30) for i in range(ANALYZE_AFTER)])
    after = _analyses(db, "grids", "reports", "report_events", "report_loops")
    assert {t: after[t] - before[t] for t in before} == dict.fromkeys(before, 1)
    assert [n for n in notices if n.startswith("WARNING")] == []


def test_downgrade_revokes_and_keeps_a_role_that_still_has_members(db, member, caplog):
    from alembic import command

    cfg = migrate.alembic_config()
    with caplog.at_level(logging.WARNING), db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    try:
        with db.connect() as conn:
            left = conn.execute(
                text(
                    "SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid "
                    "JOIN pg_database b ON b.oid = d.dbid WHERE r.rolname = :r "
                    "AND b.datname = current_database()"
                ),
                {"r": APP_ROLE},
            ).scalar()
            kept = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE})
            assert left == 0 and kept.scalar() == 1
        assert f"role {APP_ROLE} kept" in caplog.text and "1 member login(s)" in caplog.text
        refused = _refused(member, "SELECT count(*) FROM reports")
        assert isinstance(refused, errors.InsufficientPrivilege)
    finally:
        assert migrate.upgrade(db) == migrate.head()
    with member.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reports")).scalar() == 0


def test_a_backup_restores_into_a_database_of_another_owner(db, settings, tmp_path):
    """A backup of the project cluster (default privileges FOR ROLE postgres) restores as a
    non-superuser owner of another database: the defaults become that owner's."""
    dump = backup.backup(db, tmp_path / "rg.dump").path
    owner, password = f"rg_owner_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    target = f"rg_restore_{uuid.uuid4().hex[:8]}"
    base = make_url(settings.database_url or "")
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'"))
        conn.execute(text(f"CREATE DATABASE {target} OWNER {owner}"))
    try:
        as_admin = create_engine(base.set(database=target), isolation_level="AUTOCOMMIT")
        with as_admin.connect() as conn:
            # As on a managed server: PostGIS made by its administrator, its table open to
            # the owner, which restores the rows added to it (none here).
            conn.execute(text("CREATE EXTENSION postgis"))
            conn.execute(text(f"GRANT SELECT, INSERT ON spatial_ref_sys TO {owner}"))
        as_admin.dispose()
        url = base.set(database=target, username=owner, password=password)
        engine = make_engine(settings, url.render_as_string(hide_password=False))
        done = backup.restore(engine, dump)
        assert done.revision == migrate.head()
        with engine.connect() as conn:
            defaults = conn.execute(
                text(
                    "SELECT r.rolname, d.defaclobjtype FROM pg_default_acl d "
                    "JOIN pg_roles r ON r.oid = d.defaclrole ORDER BY 2"
                )
            ).all()
            granted = conn.execute(
                text("SELECT has_table_privilege(:r, 'audit_log', 'UPDATE')"), {"r": APP_ROLE}
            ).scalar()
        engine.dispose()
        assert [tuple(d) for d in defaults] == [(owner, "S"), (owner, "r")]
        assert granted is False
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)"))
            conn.execute(text(f"DROP ROLE IF EXISTS {owner}"))
        admin.dispose()
