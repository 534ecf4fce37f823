"""What every `riskgrid` command shares: the engine, exit codes, error and JSON printing, and
progress bars on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from tqdm import tqdm

from geo.errors import RiskgridError
from geo.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from geo.settings import Settings

FAILED = 1  # an error the message explains
REFUSED = 2  # a file refused: nothing in it may be stored (or --strict and findings)
UNREACHABLE = 3  # the database is not running or does not answer


def get_engine() -> Engine:
    """Return an engine on the configured database as the service's login (imported here:
    `--help` stays fast)."""
    from geo.db.engine import database_url, make_engine

    settings = get_settings()
    return make_engine(settings, _resolved(database_url, settings))


def get_owner_engine() -> Engine:
    """Return an engine on the configured database as its owner: migrations, backups and
    restores only (the project cluster's superuser, or RISKGRID_MIGRATION_URL)."""
    from geo.db.engine import make_engine, owner_url

    settings = get_settings()
    return make_engine(settings, _resolved(owner_url, settings))


def _resolved(url_of: Callable[[Settings], str], settings: Settings) -> str:
    """Return the URL; a cluster or login not set up yet ends the command, saying so."""
    try:
        return url_of(settings)
    except RiskgridError as exc:
        fail(exc, UNREACHABLE)


@contextmanager
def connection(begin: bool = True) -> Iterator[Connection]:
    """Yield a connection to the configured database, in a transaction when `begin`.

    A database that does not answer ends the command with UNREACHABLE and says what to do.
    """
    from sqlalchemy.exc import OperationalError

    engine = get_engine()
    try:
        try:
            conn = engine.connect()
        except OperationalError as exc:
            unreachable(exc)
        with conn:
            if not begin:
                yield conn
                return
            with conn.begin():
                yield conn
    finally:
        engine.dispose()


def unreachable(exc: Any) -> NoReturn:
    """Say that the database does not answer (with the driver's reason) and exit 3."""
    reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    typer.secho(
        f"error: cannot connect to the database ({reason}): start it with "
        "`riskgrid db up`, or check DATABASE_URL",
        fg=typer.colors.RED,
        err=True,
    )
    raise typer.Exit(UNREACHABLE) from None


def fail(exc: RiskgridError, code: int = FAILED) -> NoReturn:
    """Print the error on stderr and end the command with `code`."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _plain(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def echo_json(data: Any) -> None:
    """Print `data` as indented JSON, Chinese text as is, times in ISO 8601."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_plain))


def read_password() -> str:
    """Return the one line given on stdin (without its line end; not echoed on a terminal);
    fail when it is empty."""
    if sys.stdin.isatty():
        import getpass

        line = getpass.getpass("password: ")
    else:
        line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        typer.secho(
            "error: no password on stdin: give it as one line", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(FAILED)
    return line


class ProgressBar:
    """A tqdm bar on stderr, opened by `start` once the total is known, closed with the block."""

    def __init__(self, desc: str, unit: str, disable: bool) -> None:
        self._options = {"desc": desc, "unit": unit, "disable": disable, "file": sys.stderr}
        self._bar: tqdm | None = None

    def start(self, total: int | None = None) -> Callable[[int], None]:
        """Open the bar for `total` items (None: not known); return its update callback."""
        self._bar = tqdm(total=total, **self._options)
        return self._bar.update

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def run_row_import(
    path: Path,
    unit: str,
    as_json: bool,
    load: Callable[[Callable[[int], Callable[[int], None]]], Any],
    describe: Callable[[Any], str],
) -> None:
    """Run a row-checked file import (reports, households) with a progress bar, print its
    outcome (text or JSON), and exit 2 when every row was refused."""
    try:
        with ProgressBar(f"loading {path.name}", f" {unit}", disable=as_json) as bar:
            outcome = load(bar.start)
    except RiskgridError as exc:
        fail(exc)
    if as_json:
        echo_json(outcome.as_dict())
    else:
        typer.echo(describe(outcome))
    if outcome.refused_all:
        raise typer.Exit(REFUSED)
