"""`riskgrid households import`: who lives where, from CSV or GeoJSON files."""

from __future__ import annotations

from pathlib import Path

import typer

from geo.settings import get_settings
from riskgrid.common import get_engine, run_row_import
from riskgrid.options import AsJson

app = typer.Typer(help="Households: who lives where.", no_args_is_help=True)


@app.command("import")
def households_import(path: Path, as_json: AsJson = False) -> None:
    """Load households from a CSV or GeoJSON file (upserted by code), with a per-row report."""
    from boundaries.household_import import format_outcome, import_file

    run_row_import(
        path,
        "households",
        as_json,
        lambda progress: import_file(get_engine(), path, get_settings().reports, progress),
        format_outcome,
    )
