"""`riskgrid layers import|list`: risk layers (flood zones, rivers, reservoirs, low-lying land)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.errors import ImportRefused, RiskgridError
from riskgrid.common import REFUSED, echo_json, fail, get_engine
from riskgrid.options import AsJson, CodeField, Crs, Encoding, FileLayer, NameField, Prune, Strict

app = typer.Typer(help="Risk layers: flood zones, rivers, reservoirs.", no_args_is_help=True)

Kind = Annotated[str, typer.Option(help="flood_zone, river, reservoir or low_lying")]
LevelField = Annotated[
    str | None, typer.Option("--level-field", help="column: level 1-3 or 低/中/高")
]
ReturnPeriodField = Annotated[
    str | None, typer.Option("--return-period-field", help="column: return period, years")
]
Level = Annotated[
    int | None, typer.Option(help="level 1-3 for every feature of a file without one")
]


@app.command("import")
def layers_import(
    path: Path,
    kind: Kind,
    file_layer: FileLayer = None,
    crs: Crs = None,
    encoding: Encoding = None,
    code_field: CodeField = None,
    name_field: NameField = None,
    level_field: LevelField = None,
    return_period_field: ReturnPeriodField = None,
    level: Level = None,
    strict: Strict = False,
    prune: Prune = False,
    as_json: AsJson = False,
) -> None:
    """Check and import a risk layer file (GeoJSON, GeoPackage, Shapefile, FlatGeobuf)."""
    from boundaries.risk_import import LayerOptions, format_outcome, import_layer

    fields = {
        role: value
        for role, value in (
            ("code", code_field),
            ("name", name_field),
            ("level", level_field),
            ("return_period", return_period_field),
        )
        if value
    }
    opts = LayerOptions(kind, file_layer, crs, encoding, fields, level, strict, prune)
    try:
        outcome = import_layer(get_engine(), path, opts)
    except ImportRefused as exc:
        if exc.report is not None:
            typer.echo(format_outcome(exc.report))  # type: ignore[arg-type]
        fail(exc, REFUSED)
    except RiskgridError as exc:
        fail(exc)
    if as_json:
        echo_json(outcome.as_dict())
    else:
        typer.echo(format_outcome(outcome))


@app.command("list")
def layers_list() -> None:
    """Print the stored risk features per kind and level, with areas and lengths."""
    from geo.risk import layers as risk_layers

    with get_engine().connect() as conn:
        for row in risk_layers.summary(conn):
            typer.echo(
                f"{row['kind']:<11} level {row['level'] or '-'}: {row['features']} feature(s), "
                f"{row['area_km2']:,.1f} km², {row['length_km']:,.1f} km"
            )
