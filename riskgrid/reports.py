"""`riskgrid reports import`: grid workers' reports from CSV or GeoJSON files."""

from __future__ import annotations

from pathlib import Path

import typer

from geo.settings import get_settings
from riskgrid.common import get_engine, run_row_import
from riskgrid.options import AsJson

app = typer.Typer(help="Grid workers' reports.", no_args_is_help=True)


@app.command("import")
def reports_import(path: Path, as_json: AsJson = False) -> None:
    """Load reports from a CSV or GeoJSON file: assigned in bulk, with a per-row error report."""
    from boundaries.report_import import format_outcome, import_file

    run_row_import(
        path,
        "reports",
        as_json,
        lambda progress: import_file(get_engine(), path, get_settings().reports, progress),
        format_outcome,
    )
