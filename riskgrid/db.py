"""`riskgrid db`: the project's own PostgreSQL + PostGIS cluster, or DATABASE_URL's database."""

from __future__ import annotations

import time

import typer

from geo.errors import RiskgridError
from geo.settings import get_settings
from riskgrid.common import UNREACHABLE, fail, get_engine

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
