"""The service's group role `riskgrid_app`: what the web service and the everyday commands may
do, and nothing more. Its logins (`riskgrid_web` in the project's own cluster, a DBA's login
on another server) are members; the migrations, backups and restores run as the owner.

The rule for later migrations: a table or sequence they create in `public` is granted to
riskgrid_app by default privileges (tables SELECT, INSERT, UPDATE, DELETE; sequences USAGE,
SELECT), as long as the migrations run as the role that ran this one, the owner of the schema's
tables. A table the service must not change as a whole (a history, an append-only log) revokes
what it may not do in its own migration, as audit_log, report_events and visits have here;
tests/geo/db/test_app_role.py lists every table's rights, so a new one fails there until they
are decided.

Never granted: TRUNCATE, REFERENCES, TRIGGER on any table, CREATE on the schema (taken from
PUBLIC where an older PostgreSQL gave it), rights on PostGIS's own tables (spatial_ref_sys),
anything but SELECT on alembic_version. The one statement only an owner may run that the
service needs, ANALYZE after a bulk load (otherwise a warning and nothing), goes through
`refresh_statistics(VARIADIC text[])`, SECURITY DEFINER, for riskgrid's tables only.

The role is the cluster's, not the database's: it is created when missing, and a migrating
user who may not create roles (a managed PostgreSQL) fails here with the statement its DBA
should run, before anything of this revision is applied; skipping would leave a schema whose
service login has no rights, found only at the first request. Downgrading revokes it all and
drops the role, unless another database still grants it something or it has members (the
project cluster's riskgrid_web, a DBA's login): then it stays, and the log says why.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

import logging

import sqlalchemy as sa
from alembic import op

from geo.errors import SetupError

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ROLE = "riskgrid_app"
EVERYDAY = "SELECT, INSERT, UPDATE, DELETE"
# The histories: rows are added, never rewritten (their triggers say so too, but an owner or a
# superuser may switch triggers off; the role cannot). A report's removal still takes its
# events with it: a foreign key's action runs with the rights of the table's owner.
NARROWER = {
    "alembic_version": "SELECT",
    "audit_log": "SELECT, INSERT",
    # The demo names the handler of events it wrote (boundaries.demo_reports); transitions'
    # own columns are kept by the trigger report_transitions_kept.
    "report_events": "SELECT, INSERT, UPDATE (handler_id)",
    "visits": "SELECT, INSERT",
}
# riskgrid's own tables and sequences in public: PostGIS's (spatial_ref_sys) are not.
OWN = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = ANY(:kinds)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""
REFRESH_STATISTICS = """
CREATE FUNCTION refresh_statistics(VARIADIC tables text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY tables LOOP
    IF NOT EXISTS (
      SELECT 1 FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relname = t
        AND c.relkind IN ('r', 'p')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                        AND d.objid = c.oid AND d.deptype = 'e')) THEN
      RAISE EXCEPTION 'refresh_statistics: % is not a table of riskgrid', t
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('ANALYZE public.%I', t);
  END LOOP;
END $$"""

log = logging.getLogger("alembic.runtime.migration")


def _scalar(sql: str, **params: object) -> object:
    return op.get_bind().execute(sa.text(sql), params).scalar()


def _own(*kinds: str) -> list[str]:
    return list(op.get_bind().execute(sa.text(OWN), {"kinds": list(kinds)}).scalars())


def _create_role() -> None:
    if _scalar("SELECT 1 FROM pg_roles WHERE rolname = :r", r=ROLE):
        return
    if not _scalar("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"):
        user = _scalar("SELECT current_user")
        raise SetupError(
            f"the role {ROLE} does not exist and {user} may not create roles: have the "
            f"database's administrator run `CREATE ROLE {ROLE} NOLOGIN;` (once per server), "
            "then run `riskgrid db upgrade` again"
        )
    # Another database of the cluster may be migrating at the same moment.
    op.execute(
        f"DO $$ BEGIN CREATE ROLE {ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )


def _owns_database() -> bool:
    return bool(
        _scalar(
            "SELECT pg_has_role(current_user, datdba, 'USAGE') FROM pg_database "
            "WHERE datname = current_database()"
        )
    )


def _owns_schema() -> bool:
    return bool(
        _scalar(
            "SELECT pg_has_role(current_user, nspowner, 'USAGE') FROM pg_namespace "
            "WHERE nspname = 'public'"
        )
    )


def _database_rights() -> None:
    """CONNECT and TEMPORARY (the importers stage rows in temporary tables) on this database,
    USAGE on the schema, and CREATE on it taken from PUBLIC, which PostgreSQL before 15 gave.
    What only the database's or the schema's owner may grant, another migrating user finds
    granted already (to PUBLIC, as PostgreSQL does by default) or is told who must."""
    db = _scalar("SELECT current_database()")
    if _owns_database():
        op.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO {ROLE}')
    elif not _scalar(
        "SELECT has_database_privilege(:r, current_database(), 'CONNECT') "
        "AND has_database_privilege(:r, current_database(), 'TEMPORARY')",
        r=ROLE,
    ):
        raise SetupError(
            f"{ROLE} may not connect to {db} or make temporary tables there: have its owner "
            f'run `GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO {ROLE};`, then run '
            "`riskgrid db upgrade` again"
        )
    owns_schema = _owns_schema()
    if _scalar("SELECT has_schema_privilege('public', 'public', 'CREATE')"):
        if not owns_schema:
            raise SetupError(
                "every role may create tables in the schema public of this database: have its "
                "owner run `REVOKE CREATE ON SCHEMA public FROM PUBLIC;`, then run "
                "`riskgrid db upgrade` again"
            )
        # Not given back by the downgrade: PostgreSQL 15's own default since.
        op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    if owns_schema:
        op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    elif not _scalar("SELECT has_schema_privilege(:r, 'public', 'USAGE')", r=ROLE):
        raise SetupError(
            f"{ROLE} may not use the schema public of {db}: have its owner run "
            f"`GRANT USAGE ON SCHEMA public TO {ROLE};`, then run `riskgrid db upgrade` again"
        )


def upgrade() -> None:
    _create_role()
    _database_rights()
    for table in _own("r", "p"):
        op.execute(f'GRANT {NARROWER.get(table, EVERYDAY)} ON TABLE public."{table}" TO {ROLE}')
    for sequence in _own("S"):
        op.execute(f'GRANT USAGE, SELECT ON SEQUENCE public."{sequence}" TO {ROLE}')
    defaults = "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT"
    op.execute(f"{defaults} {EVERYDAY} ON TABLES TO {ROLE}")
    op.execute(f"{defaults} USAGE, SELECT ON SEQUENCES TO {ROLE}")
    op.execute(REFRESH_STATISTICS)
    op.execute("REVOKE ALL ON FUNCTION refresh_statistics(text[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION refresh_statistics(text[]) TO {ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION refresh_statistics(text[])")
    defaults = "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL"
    op.execute(f"{defaults} ON TABLES FROM {ROLE}")
    op.execute(f"{defaults} ON SEQUENCES FROM {ROLE}")
    for table in _own("r", "p"):
        op.execute(f'REVOKE ALL ON TABLE public."{table}" FROM {ROLE}')
    for sequence in _own("S"):
        op.execute(f'REVOKE ALL ON SEQUENCE public."{sequence}" FROM {ROLE}')
    if _owns_schema():
        op.execute(f"REVOKE ALL ON SCHEMA public FROM {ROLE}")
    if _owns_database():
        db = _scalar("SELECT current_database()")
        op.execute(f'REVOKE ALL ON DATABASE "{db}" FROM {ROLE}')
    _drop_role_unless_used()


def _drop_role_unless_used() -> None:
    """Drop the role when nothing grants it anything any more and no login is its member."""
    if not _scalar("SELECT 1 FROM pg_roles WHERE rolname = :r", r=ROLE):
        return
    granted = _scalar(
        "SELECT count(DISTINCT d.dbid) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid "
        "WHERE d.refclassid = 'pg_authid'::regclass AND r.rolname = :r",
        r=ROLE,
    )
    members = _scalar(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
        "WHERE r.rolname = :r",
        r=ROLE,
    )
    may = _scalar("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    if granted or members or not may:
        log.warning(
            "role %s kept (it is the server's, not this database's): rights in %s "
            "database(s), %s member login(s)%s",
            ROLE,
            granted,
            members,
            "" if may else ", and this user may not drop roles",
        )
        return
    op.execute(f"DROP ROLE {ROLE}")
