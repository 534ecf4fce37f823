"""`riskgrid reports import`: grid workers' reports from CSV or GeoJSON files."""

from __future__ import annotations

from pathlib import Path

import typer

from geo.errors import RiskgridError
from geo.settings import get_settings
from riskgrid.common import REFUSED, ProgressBar, echo_json, fail, get_engine
from riskgrid.options import AsJson

app = typer.Typer(help="Grid workers' reports.", no_args_is_help=True)


@app.command("import")
def reports_import(path: Path, as_json: AsJson = False) -> None:
    """Load reports from a CSV or GeoJSON file: assigned in bulk, with a per-row error report."""
    from boundaries.report_import import format_outcome, import_file

    try:
        with ProgressBar(f"loading {path.name}", " reports", disable=as_json) as bar:
            outcome = import_file(get_engine(), path, get_settings().reports, bar.start)
    except RiskgridError as exc:
        fail(exc)
    if as_json:
        echo_json(outcome.as_dict())
    else:
        typer.echo(format_outcome(outcome))
    if outcome.refused_all:
        raise typer.Exit(REFUSED)
