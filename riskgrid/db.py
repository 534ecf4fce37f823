"""`riskgrid db`: the project's own PostgreSQL + PostGIS cluster, or DATABASE_URL's database."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from geo.errors import Conflict, RiskgridError
from geo.settings import get_settings
from riskgrid.common import REFUSED, UNREACHABLE, fail, get_owner_engine, unreachable

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

T = TypeVar("T")
NO_APP_URL = "none (no app-password file): run `riskgrid db up`"

app = typer.Typer(help="The PostgreSQL + PostGIS database.", no_args_is_help=True)


@app.command("up")
def db_up() -> None:
    """Start the project's own PostgreSQL (initdb on first use), apply migrations and set up
    the service's login."""
    from geo.db import migrate
    from geo.db.engine import make_engine, masked_url, owner_url, project_cluster

    settings = get_settings()
    t0 = time.perf_counter()
    cluster = None if settings.database_url else project_cluster(settings)
    try:
        if cluster is None:
            url = owner_url(settings)
            typer.echo("DATABASE_URL is set: using it, no local cluster started")
        else:
            url = cluster.up()
        engine = make_engine(settings, url)
        rev = migrate.upgrade(engine)
        engine.dispose()
        app_url = cluster.ensure_app_login() if cluster else None
    except RiskgridError as exc:
        fail(exc)
    typer.echo(
        f"database ready at {masked_url(url)} (schema {rev}) in {time.perf_counter() - t0:.2f} s"
    )
    if cluster is not None and app_url:
        typer.echo(
            f"the service and the commands connect as {masked_url(app_url)} "
            f"(password in {cluster.app_password_file})"
        )


@app.command("down")
def db_down() -> None:
    """Stop the project's own PostgreSQL."""
    from geo.db.engine import project_cluster

    try:
        stopped = project_cluster(get_settings()).down()
    except RiskgridError as exc:
        fail(exc)
    typer.echo("stopped" if stopped else "not running")


def _login_line(conn: Connection, user: str | None, what: str, service: bool) -> str:
    """Say what `user` is: a member of riskgrid_app alone, or more (or missing)."""
    from geo.db.privileges import APP_ROLE, WEB_LOGIN, login_of

    login = login_of(conn, user)
    if login is None:
        hint = ": `riskgrid db up` makes it" if user == WEB_LOGIN else ""
        return f"role {user}: missing{hint} ({what})"
    if login.least_privilege:
        standing = f"member of {APP_ROLE}"
    elif login.superuser:
        standing = "superuser"
    elif login.owns_tables:
        standing = "owner of the tables"
    else:
        standing = f"not a member of {APP_ROLE}: it cannot read the tables"
    line = f"role {login.name}: {standing} ({what})"
    if service and not login.least_privilege:
        line += f"; the service should log in as a member of {APP_ROLE} (README, Database roles)"
    return line


@app.command("status")
def db_status() -> None:
    """Say whether the database is up, where, at which schema revision, and who logs in."""
    from sqlalchemy.engine import make_url

    from geo.db import migrate
    from geo.db.engine import make_engine, masked_url, owner_url, project_cluster
    from geo.db.local_cluster import SERVER_USER
    from geo.db.privileges import WEB_LOGIN

    settings = get_settings()
    if settings.database_url:
        typer.echo(f"using DATABASE_URL {masked_url(settings.database_url)}")
        if settings.migration_url:
            typer.echo(f"migrating as RISKGRID_MIGRATION_URL {masked_url(settings.migration_url)}")
        url = owner_url(settings)
        service = make_url(settings.database_url).username
        logins = [(service, "DATABASE_URL: the service and the commands", True)]
        if settings.migration_url:
            logins.append((make_url(url).username, "RISKGRID_MIGRATION_URL", False))
    else:
        st = project_cluster(settings).status()
        typer.echo(
            f"cluster: {'running' if st.running else 'stopped'}"
            f"{'' if st.initialized else ' (not initialised: run `riskgrid db up`)'}"
        )
        typer.echo(f"data: {st.data_dir}\nsocket: {st.socket_dir}\nport: {st.port}")
        typer.echo(f"password: {st.password_file}\napp password: {st.app_password_file}")
        if not st.running:
            raise typer.Exit(UNREACHABLE)
        url = st.url or ""
        typer.echo(f"url: {masked_url(url)}")
        typer.echo(f"app url: {masked_url(st.app_url) if st.app_url else NO_APP_URL}")
        logins = [
            (SERVER_USER, "migrations, backup, restore", False),
            (WEB_LOGIN, "the service and the commands", True),
        ]
    try:
        engine = make_engine(settings, url)
        rev, head = migrate.current(engine), migrate.head()
        with engine.connect() as conn:
            lines = [_login_line(conn, *login) for login in logins]
        engine.dispose()
    except Exception as exc:
        typer.secho(f"database unreachable: {type(exc).__name__}", fg=typer.colors.RED, err=True)
        raise typer.Exit(UNREACHABLE) from None
    typer.echo(
        f"schema: {rev or 'none'} (head {head})"
        + ("" if rev == head else " — run `riskgrid db upgrade`")
    )
    typer.echo("\n".join(lines))


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to the newest revision (as the owner)."""
    from geo.db import migrate
    from geo.db.engine import project_cluster

    settings = get_settings()
    try:
        engine = get_owner_engine()
        rev = migrate.upgrade(engine)
        engine.dispose()
        if not settings.database_url:
            project_cluster(settings).ensure_app_login()
    except RiskgridError as exc:
        fail(exc)
    typer.echo(f"schema at {rev}")


def _counts_line(counts: dict[str, int]) -> str:
    main = ("grids", "reports", "report_events", "households", "users", "audit_log")
    return ", ".join(f"{t} {counts[t]:,}" for t in main if t in counts)


def _run_on_database(work: Callable[[Engine], T]) -> T:
    """Run `work` on an engine of the configured database as its owner; errors end the command
    with the same exit codes as the other commands (Conflict: REFUSED, unreachable: UNREACHABLE)."""
    from sqlalchemy.exc import OperationalError

    engine = None
    try:
        engine = get_owner_engine()
        return work(engine)
    except Conflict as exc:
        fail(exc, REFUSED)
    except RiskgridError as exc:
        fail(exc)
    except OperationalError as exc:
        unreachable(exc)
    finally:
        if engine is not None:
            engine.dispose()


@app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="the backup file to write (pg_dump custom format)")],
) -> None:
    """Write the whole database to FILE (pg_dump -Fc, mode 0600: it holds personal data)."""
    from geo.db import backup

    bin_dir = get_settings().cluster.bin_dir
    done = _run_on_database(lambda engine: backup.backup(engine, file, bin_dir))
    typer.echo(
        f"backup written to {done.path} ({done.size_bytes / 1e6:.1f} MB, mode 0600) "
        f"in {done.seconds:.2f} s"
    )
    typer.echo(f"rows: {_counts_line(done.counts)}")


@app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="a file `riskgrid db backup` wrote")],
    force: Annotated[
        bool, typer.Option("--force", help="replace a database that holds data")
    ] = False,
) -> None:
    """Restore FILE into the database, all or nothing; refuses one that holds data."""
    from geo.db import backup
    from geo.db.engine import project_cluster

    settings = get_settings()
    # The project's own cluster restores into a new database that replaces the old one.
    cluster = None if settings.database_url else project_cluster(settings)
    done = _run_on_database(
        lambda engine: backup.restore(engine, file, force, settings.cluster.bin_dir, cluster)
    )
    typer.echo(f"restored {file} in {done.seconds:.2f} s")
    typer.echo(f"rows: {_counts_line(done.counts)}")
    typer.echo(
        f"schema: {done.revision or 'none'} (head {done.head})"
        + (" — run `riskgrid db upgrade`" if done.needs_upgrade else ", no upgrade needed")
    )
