"""`riskgrid serve`: the web service under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from geo.settings import get_settings

Host = Annotated[str | None, typer.Option(help="address to listen on")]
Port = Annotated[int | None, typer.Option(help="port to listen on")]
Workers = Annotated[int | None, typer.Option(help="worker processes (default: cores, ≤4)")]


def serve(host: Host = None, port: Port = None, workers: Workers = None) -> None:
    """Run the web service (api.app:app) with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.app:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        access_log=False,
    )
