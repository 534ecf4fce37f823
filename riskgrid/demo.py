"""`riskgrid demo`: the seeded Daqing demo, generated and imported, and its users."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from geo.errors import RiskgridError
from geo.settings import get_settings
from riskgrid.common import fail, get_engine

Out = Annotated[Path, typer.Option(help="where to write the generated files")]
USERS_FILE = "demo-users.txt"  # in the cluster's home (settings.cluster.home), mode 0600


def demo(out: Out = Path(".riskgrid/demo")) -> None:
    """Generate the seeded Daqing demo (streets, communities, 4,964 grids, reports, flood
    layers, households, one user per role) and import it; harmless to repeat."""
    from boundaries.demo import load_demo
    from geo.photo_store import store_for

    settings = get_settings()
    t0 = time.perf_counter()
    try:
        summary = load_demo(
            get_engine(),
            out,
            settings.imports,
            echo=typer.echo,
            reports=settings.reports,
            users_file=settings.cluster.home / USERS_FILE,
            auth=settings.auth,
            # Where the server reads photos from, so the demo's are served like uploads.
            photos=store_for(settings),
            photo_rules=settings.photos,
        )
    except RiskgridError as exc:
        fail(exc)
    typer.echo(f"demo loaded in {time.perf_counter() - t0:.1f} s: {summary}")
