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
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: any local process could
        # then forge the client address the audit log and the login lockout rely on.
        proxy_headers=False,
    )
