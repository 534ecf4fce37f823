"""Command options shared by the file imports (boundaries, layers, reports, households)."""

from __future__ import annotations

from typing import Annotated

import typer

FileLayer = Annotated[
    str | None, typer.Option("--file-layer", help="layer in a GeoPackage, or shapefile in a zip")
]
Crs = Annotated[str | None, typer.Option(help="CRS of a file that declares none, e.g. EPSG:4490")]
Encoding = Annotated[
    str | None, typer.Option(help="attribute encoding of a shapefile with no .cpg")
]
CodeField = Annotated[str | None, typer.Option("--code-field", help="column holding the grid code")]
NameField = Annotated[str | None, typer.Option("--name-field", help="column holding the name")]
Strict = Annotated[bool, typer.Option(help="refuse the whole file on any finding")]
Prune = Annotated[
    bool, typer.Option(help="the file is the whole layer: remove stored features it lacks")
]
AsJson = Annotated[bool, typer.Option("--json", help="print the report as JSON")]
