"""`riskgrid db`: the project's own PostgreSQL + PostGIS cluster, or DATABASE_URL's database."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from geo.errors import Conflict, RiskgridError
from geo.settings import get_settings
from riskgrid.common import REFUSED, UNREACHABLE, fail, get_engine, unreachable

if TYPE_CHECKING:
    from sqlalchemy import Engine

T = TypeVar("T")

app = typer.Typer(help="The PostgreSQL + PostGIS database.", no_args_is_help=True)


@app.command("up")
def db_up() -> None:
    """Start the project's own PostgreSQL (initdb on first use) and apply migrations."""
    from geo.db import migrate
    from geo.db.engine import make_engine, masked_url, project_cluster

    settings = get_settings()
    t0 = time.perf_counter()
    try:
        if settings.database_url:
            url = settings.database_url
            typer.echo("DATABASE_URL is set: using it, no local cluster started")
        else:
            url = project_cluster(settings).up()
        engine = make_engine(settings, url)
        rev = migrate.upgrade(engine)
        engine.dispose()
    except RiskgridError as exc:
        fail(exc)
    typer.echo(
        f"database ready at {masked_url(url)} (schema {rev}) in {time.perf_counter() - t0:.2f} s"
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


@app.command("status")
def db_status() -> None:
    """Say whether the database is up, where, and at which schema revision."""
    from geo.db import migrate
    from geo.db.engine import make_engine, masked_url, project_cluster

    settings = get_settings()
    if settings.database_url:
        typer.echo(f"using DATABASE_URL {masked_url(settings.database_url)}")
        url = settings.database_url
    else:
        st = project_cluster(settings).status()
        typer.echo(
            f"cluster: {'running' if st.running else 'stopped'}"
            f"{'' if st.initialized else ' (not initialised: run `riskgrid db up`)'}"
        )
        typer.echo(f"data: {st.data_dir}\nsocket: {st.socket_dir}\nport: {st.port}")
        typer.echo(f"password: {st.password_file}")
        if not st.running:
            raise typer.Exit(UNREACHABLE)
        url = st.url or ""
        typer.echo(f"url: {masked_url(url)}")
    try:
        engine = make_engine(settings, url)
        rev, head = migrate.current(engine), migrate.head()
        engine.dispose()
    except Exception as exc:
        typer.secho(f"database unreachable: {type(exc).__name__}", fg=typer.colors.RED, err=True)
        raise typer.Exit(UNREACHABLE) from None
    typer.echo(
        f"schema: {rev or 'none'} (head {head})"
        + ("" if rev == head else " — run `riskgrid db upgrade`")
    )


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to the newest revision."""
    from geo.db import migrate

    try:
        rev = migrate.upgrade(get_engine())
    except RiskgridError as exc:
        fail(exc)
    typer.echo(f"schema at {rev}")


def _counts_line(counts: dict[str, int]) -> str:
    main = ("grids", "reports", "report_events", "households", "users", "audit_log")
    return ", ".join(f"{t} {counts[t]:,}" for t in main if t in counts)


def _run_on_database(work: Callable[[Engine], T]) -> T:
    """Run `work` on an engine of the configured database; errors end the command with the
    same exit codes as the other commands (Conflict: REFUSED, unreachable: UNREACHABLE)."""
    from sqlalchemy.exc import OperationalError

    engine = None
    try:
        engine = get_engine()
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
