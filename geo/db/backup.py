"""Backups: pg_dump's custom format of a riskgrid database, and pg_restore back into one.

The tools run from the cluster's bin folder and get the password through PGPASSWORD in their
environment, never on a command line (which every user of the machine can read in `ps`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from geo.db import migrate
from geo.db.local_cluster import Cluster, find_bin_dir
from geo.db.privileges import APP_ROLE, ensure_app_role
from geo.errors import Conflict, InvalidInput, SetupError

# Every table of the schema, parents first; `row_counts` reports those that exist.
TABLES = (
    "boundary_versions",
    "areas",
    "grids",
    "campaigns",
    "reports",
    "report_events",
    "report_loops",
    "risk_layers",
    "risk_parts",
    "households",
    "users",
    "user_grids",
    "user_districts",
    "auth_tokens",
    "audit_log",
    "report_photos",
    "notifications",
    "outbox",
    "webhook_deliveries",
    "campaign_targets",
    "visits",
    "visit_photos",
)
# A row in any of these means the database holds someone's data: restore wants --force.
HOLDING = ("reports", "grids", "users", "households", "audit_log")
CHECKSUMMED = ("reports", "report_events", "users", "audit_log")
_SQLALCHEMY_ONLY = {"driver", "plugin"}


@dataclass(frozen=True)
class BackupResult:
    """What `backup` wrote: the file, its size, the time taken and the rows it holds."""

    path: Path
    size_bytes: int
    seconds: float
    counts: dict[str, int]


@dataclass(frozen=True)
class RestoreResult:
    """What `restore` left: the rows, the schema revision against the newest, the time."""

    seconds: float
    counts: dict[str, int]
    revision: str | None
    head: str | None

    @property
    def needs_upgrade(self) -> bool:
        """True when the restored schema is behind the migration scripts."""
        return self.revision != self.head


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _libpq(url_text: str) -> tuple[str, dict[str, str]]:
    """Return the conninfo (without the password) and the environment for pg_dump/pg_restore."""
    url = make_url(url_text)
    params: dict[str, str] = {
        k: str(v[0] if isinstance(v, tuple) else v)
        for k, v in url.query.items()
        if k not in _SQLALCHEMY_ONLY
    }
    if url.host:
        params["host"] = url.host
    if url.port:
        params["port"] = str(url.port)
    if url.username:
        params["user"] = url.username
    if not url.database:
        raise SetupError("the database URL names no database")
    params["dbname"] = url.database
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return make_conninfo(**params), env


def _run(tool: Path, args: list[str], env: Mapping[str, str]) -> str:
    proc = subprocess.run(  # noqa: S603 - fixed tool path, arguments as a list
        [str(tool), *args], capture_output=True, text=True, env=dict(env), check=False
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise SetupError(f"{tool.name} failed: {' / '.join(lines[-3:]) or 'no message'}")
    return proc.stdout


def row_counts(conn: Connection) -> dict[str, int]:
    """Return the row count of every riskgrid table the database has."""
    counts: dict[str, int] = {}
    for table in TABLES:
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
            continue
        counts[table] = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    return counts


def checksums(conn: Connection, tables: tuple[str, ...] = CHECKSUMMED) -> dict[str, str]:
    """Return the md5 of each table's rows as text, in byte order of that text."""
    return {
        t: conn.execute(
            text(
                f"SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text COLLATE \"C\"),"
                f" '')) FROM {t} AS r"
            )
        ).scalar_one()
        for t in tables
    }


def holding_tables(conn: Connection) -> list[str]:
    """Return the tables among HOLDING that have at least one row."""
    return [
        t
        for t in HOLDING
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": t}).scalar() is not None
        and conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {t})")).scalar()
    ]


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """Yield a new empty file (mode 0600) in `path`'s folder; removed unless renamed away."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def backup(engine: Engine, path: Path, bin_dir: Path | None = None) -> BackupResult:
    """Write the database to `path` (pg_dump -Fc, mode 0600, renamed into place when whole).

    The counts come from the very snapshot pg_dump reads (pg_export_snapshot), so they are
    the backup's own even while reports keep arriving.
    """
    path = path.resolve()
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder: give a file name for the backup")
    if not path.parent.is_dir():
        raise InvalidInput(f"folder {path.parent} does not exist")
    tool = find_bin_dir(bin_dir) / "pg_dump"
    conninfo, env = _libpq(_url(engine))
    t0 = time.perf_counter()
    with engine.connect() as conn, _temporary_beside(path) as tmp:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        counts = row_counts(conn)
        _run(tool, ["-Fc", "-w", f"--snapshot={snapshot}", "-f", str(tmp), "-d", conninfo], env)
        conn.rollback()
        tmp.chmod(0o600)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return BackupResult(path, path.stat().st_size, time.perf_counter() - t0, counts)


def _archive_tables(listing: str) -> set[str]:
    """Return the public tables a `pg_restore --list` listing creates."""
    found = set()
    for line in listing.splitlines():
        words = line.split()
        if not line.startswith(";") and len(words) >= 6 and words[3:5] == ["TABLE", "public"]:
            found.add(words[5])
    return found


_OWN_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
"""


def restore(
    engine: Engine,
    path: Path,
    force: bool = False,
    bin_dir: Path | None = None,
    cluster: Cluster | None = None,
) -> RestoreResult:
    """Restore a `backup` file into the database, all or nothing; return what it holds then.

    Refuses a database holding data unless `force`. In the project `cluster` the backup goes
    into a new database that replaces the old one once whole; elsewhere pg_restore --clean
    drops and recreates each table in one transaction (the audit log's triggers refuse DELETE
    and TRUNCATE, not DROP), so tables the backup lacks (a newer schema) are refused.
    """
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    tools = find_bin_dir(bin_dir)
    _, env = _libpq(_url(engine))
    try:
        listing = _run(tools / "pg_restore", ["--list", str(path)], env)
    except SetupError as exc:
        raise InvalidInput(f"{path} is not a pg_dump custom-format backup ({exc})") from exc
    with engine.connect() as conn:
        holding = holding_tables(conn)
        extra = sorted(set(conn.execute(text(_OWN_TABLES)).scalars()) - _archive_tables(listing))
    if holding and not force:
        raise Conflict(
            f"the database holds data (rows in {', '.join(holding)}): restore refuses to "
            "replace it; give --force to replace everything in it with the backup"
        )
    engine.dispose()  # no idle connection of ours in the way of DROP TABLE or DROP DATABASE
    t0 = time.perf_counter()
    if cluster is not None:
        _restore_by_swap(cluster, engine, path, tools, listing)
    elif extra:
        raise Conflict(
            f"the database has tables the backup lacks ({', '.join(extra)}): its schema is "
            "newer than the backup's; restore into an empty database without migrations"
        )
    else:
        _pg_restore(tools, _url(engine), path, listing)
    seconds = time.perf_counter() - t0
    with engine.connect() as conn:
        counts = row_counts(conn)
    return RestoreResult(seconds, counts, migrate.current(engine), migrate.head())


def _pg_restore(tools: Path, url: str, path: Path, listing: str) -> None:
    # PostGIS stays as it is: dropped and recreated it gets new OIDs, and every open session
    # that cached the old ones fails ("no spatial operator found") until it reconnects.
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            ensure_app_role(conn)  # the backup's grants name it; roles are the server's
    finally:
        engine.dispose()
    lines = listing.splitlines()
    keep = "\n".join(ln for ln in lines if " EXTENSION " not in ln and " DEFAULT ACL " not in ln)
    defaults = "\n".join(ln for ln in lines if " DEFAULT ACL " in ln)
    conninfo, env = _libpq(url)
    with _temporary_beside(path.resolve()) as items:
        items.write_text(keep + "\n")
        args = ["--clean", "--if-exists", "--no-owner", "-1", "-w", "-L", str(items)]
        _run(tools / "pg_restore", [*args, "-d", conninfo, str(path)], env)
        if defaults:
            items.write_text(defaults + "\n")
            script = _run(tools / "pg_restore", ["-L", str(items), "-f", "-", str(path)], env)
            _default_privileges_for_restorer(url, script)


# pg_dump writes default privileges FOR ROLE their dumper (postgres in the project cluster):
# with --no-owner the restoring user owns every object, and the defaults must be its own.
_FOR_ROLE = re.compile(r'^ALTER DEFAULT PRIVILEGES FOR ROLE (?:"(?:[^"]|"")+"|\S+) (.*;)$')


def _default_privileges_for_restorer(url: str, script: str) -> None:
    """Apply the backup's default privileges (later tables' grants) for the restoring user.

    `script` is pg_restore's SQL of its DEFAULT ACL entries: one statement a line.
    """
    statements = [
        f"ALTER DEFAULT PRIVILEGES {m.group(1)}"
        for m in map(_FOR_ROLE.match, script.splitlines())
        if m
    ]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    except Exception as exc:
        raise SetupError(
            f"restored, but not the default rights of {APP_ROLE} on tables later migrations "
            f"add ({type(exc).__name__}): have the owner run `ALTER DEFAULT PRIVILEGES IN "
            f"SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};` "
            f"and `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
            f"TO {APP_ROLE};`"
        ) from exc
    finally:
        engine.dispose()


def _restore_by_swap(
    cluster: Cluster, engine: Engine, path: Path, tools: Path, listing: str
) -> None:
    """Restore into a new database of the cluster, then let it replace the engine's one."""
    target = engine.url.database
    if not target:
        raise SetupError("the database URL names no database")
    scratch = f"{target}_restore_{secrets.token_hex(4)}"
    try:
        _pg_restore(tools, cluster.ensure_database(scratch), path, listing)
    except BaseException:
        cluster.drop_database(scratch)
        raise
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            # FORCE ends the sessions still open on it (a running server reconnects).
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
            conn.execute(text(f'ALTER DATABASE "{scratch}" RENAME TO "{target}"'))
    except Exception as exc:
        raise SetupError(
            f"the restored database {scratch} could not replace {target} ({type(exc).__name__})"
        ) from exc
    finally:
        admin.dispose()
