"""`riskgrid serve`: the web service under uvicorn."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from geo.errors import InvalidInput
from geo.settings import get_settings
from riskgrid.common import fail, get_engine

Host = Annotated[str | None, typer.Option(help="address to listen on")]
Port = Annotated[int | None, typer.Option(help="port to listen on")]
Workers = Annotated[int | None, typer.Option(help="worker processes (default: cores, ≤4)")]
ProxyHeaders = Annotated[
    bool,
    typer.Option(
        "--proxy-headers",
        help="believe X-Forwarded-For and -Proto from RISKGRID_SERVER__TRUSTED_PROXIES only "
        "(behind nginx: deploy/nginx.conf)",
    ),
]


def trusted_proxies(entries: tuple[str, ...]) -> list[str]:
    """Return the proxies whose X-Forwarded-For is believed; refuse none, '*' or a non-address."""
    if not entries:
        raise InvalidInput(
            "--proxy-headers needs the proxy's address: set RISKGRID_SERVER__TRUSTED_PROXIES, "
            """e.g. '["127.0.0.1"]' for nginx on this machine"""
        )
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise InvalidInput(
                f"trusted proxy {entry!r} is not an address or network: give e.g. 10.0.0.5 "
                "or 10.0.0.0/24 ('*' would let any client set the address the audit log records)"
            ) from None
    return list(entries)


def serve(
    host: Host = None,
    port: Port = None,
    workers: Workers = None,
    proxy_headers: ProxyHeaders = False,
) -> None:
    """Run the web service (api.app:app) with uvicorn."""
    from riskgrid.http_protocol import BoundedHttpProtocol
    from riskgrid.logs import uvicorn_log_config
    from riskgrid.server_process import ServeConfig, run

    settings = get_settings()
    door = settings.server
    try:
        # Off by default: uvicorn would trust X-Forwarded-For from 127.0.0.1, and any local
        # process could then forge the client address the audit log and the login lockout use.
        trusted = trusted_proxies(door.trusted_proxies) if proxy_headers else []
    except InvalidInput as exc:
        fail(exc)
    get_engine().dispose()  # the service's login is set up, before any server process starts
    config = ServeConfig(
        "api.app:app",
        door=door,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        http=BoundedHttpProtocol,
        access_log=False,
        # One line per event, JSON lines with RISKGRID_LOG__FORMAT=json, each with its request id.
        log_config=uvicorn_log_config(settings),
        proxy_headers=proxy_headers,
        forwarded_allow_ips=trusted,
        timeout_keep_alive=door.keep_alive_s,  # type: ignore[arg-type]  # a float works
    )
    run(config)
