"""What every `riskgrid` command shares: the engine, exit codes, error and JSON printing, and
progress bars on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from tqdm import tqdm

from geo.errors import RiskgridError
from geo.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

FAILED = 1  # an error the message explains
REFUSED = 2  # a file refused: nothing in it may be stored (or --strict and findings)
UNREACHABLE = 3  # the database is not running or does not answer


def get_engine() -> Engine:
    """Return an engine on the configured database (imported here: `--help` stays fast)."""
    from geo.db.engine import make_engine

    return make_engine(get_settings())


def fail(exc: RiskgridError, code: int = FAILED) -> NoReturn:
    """Print the error on stderr and end the command with `code`."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def echo_json(data: Any) -> None:
    """Print `data` as indented JSON, Chinese text as is."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


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
