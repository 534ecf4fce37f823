"""`riskgrid boundaries check|import`: grid and area boundary files.

Not `riskgrid/boundaries.py`: run as a script, riskgrid/ comes first on sys.path and that name
would hide the `boundaries` package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geo.errors import ImportRefused, RiskgridError
from geo.settings import get_settings
from riskgrid.common import REFUSED, ProgressBar, echo_json, fail, get_engine
from riskgrid.options import AsJson, CodeField, Crs, Encoding, FileLayer, NameField, Prune, Strict

if TYPE_CHECKING:
    from boundaries.importer import ImportOptions, ImportOutcome

app = typer.Typer(help="Grid and area boundary files.", no_args_is_help=True)

Layer = Annotated[str, typer.Option(help="what the features are: grids or areas")]
KindField = Annotated[
    str | None, typer.Option("--kind-field", help="column: comprehensive/exclusive")
]
Mapping = Annotated[Path | None, typer.Option(help='JSON file {"code": "WGBM", "name": "WGMC", …}')]


def _emit(outcome: ImportOutcome, as_json: bool) -> None:
    from boundaries.importer import format_report

    if as_json:
        echo_json(outcome.as_dict())
    else:
        typer.echo(format_report(outcome))


def _check(path: Path, opts: ImportOptions, as_json: bool) -> None:
    """Validate a boundary file and print the report; store nothing."""
    from boundaries.importer import check_file

    try:
        engine = get_engine()
        engine.connect().close()
    except Exception:
        engine = None
        typer.secho("no database: checks that need district/community outlines skipped", err=True)
    outcome = check_file(engine, path, opts, get_settings().imports)
    _emit(outcome, as_json)
    if opts.strict and outcome.report.findings:
        raise typer.Exit(REFUSED)


def _import(path: Path, opts: ImportOptions, as_json: bool) -> None:
    """Validate and import a boundary file in one transaction (all or nothing)."""
    from boundaries.importer import ImportOutcome, import_file

    settings = get_settings()
    try:
        with ProgressBar(f"importing {path.name}", " features", disable=as_json) as bar:
            outcome = import_file(
                get_engine(), path, opts, settings.imports, bar.start(), settings.reports
            )
    except ImportRefused as exc:
        if exc.report is not None:
            _emit(ImportOutcome(exc.report), as_json)
        fail(exc, REFUSED)
    _emit(outcome, as_json)


def _boundary_command(run: Callable[[Path, ImportOptions, bool], None]) -> Callable[..., None]:
    """Return a command taking the boundary file options, shared by `check` and `import`."""

    def command(
        path: Path,
        layer: Layer = "grids",
        file_layer: FileLayer = None,
        crs: Crs = None,
        encoding: Encoding = None,
        code_field: CodeField = None,
        name_field: NameField = None,
        kind_field: KindField = None,
        mapping: Mapping = None,
        strict: Strict = False,
        prune: Prune = False,
        as_json: AsJson = False,
    ) -> None:
        from boundaries.importer import ImportOptions
        from boundaries.reader import load_mapping

        try:
            fields = load_mapping(mapping) if mapping else {}
            for role, value in (("code", code_field), ("name", name_field), ("kind", kind_field)):
                if value:
                    fields[role] = value
            opts = ImportOptions(
                layer=layer,
                file_layer=file_layer,
                crs=crs,
                encoding=encoding,
                fields=fields,
                strict=strict,
                prune=prune,
            )
            run(path, opts, as_json)
        except RiskgridError as exc:
            fail(exc)

    command.__doc__ = run.__doc__
    return command


app.command("check")(_boundary_command(_check))
app.command("import")(_boundary_command(_import))
