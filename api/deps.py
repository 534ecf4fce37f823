"""Request dependencies: a pooled connection per request, settings, query parameter parsers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy import Connection, Engine

from geo.auth import ANONYMOUS, Principal, authenticate
from geo.errors import InvalidInput, Unauthorized
from geo.settings import Settings


async def get_settings_dep(request: Request) -> Settings:  # async: no thread hop
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[Connection]:
    # The engine (and its pool) is opened once in the app's lifespan, never per request.
    with request.app.state.engine.connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def parse_bbox(raw: str | None, max_area_deg2: float) -> tuple[float, float, float, float] | None:
    """Return (minx, miny, maxx, maxy) from 'minx,miny,maxx,maxy', refusing anything off."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise InvalidInput("bbox must be four numbers: minlon,minlat,maxlon,maxlat")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise InvalidInput(
            f"bbox must be four numbers: minlon,minlat,maxlon,maxlat (got {raw!r})"
        ) from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise InvalidInput("bbox values must be finite numbers")
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise InvalidInput("bbox is out of range: longitudes within ±180, latitudes within ±90")
    if minx >= maxx or miny >= maxy:
        raise InvalidInput("bbox must have minlon < maxlon and minlat < maxlat")
    if (maxx - minx) * (maxy - miny) > max_area_deg2:
        raise InvalidInput(
            f"bbox covers more than {max_area_deg2:g} square degrees; ask for a smaller area"
        )
    return minx, miny, maxx, maxy


OptionalCode = Annotated[
    str | None, Query(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")
]


async def get_engine(request: Request) -> Engine:  # async: no thread hop
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_principal(request: Request, conn: ConnDep) -> Principal:
    """Return who sends the request, from `Authorization: Bearer <token>` (none: anonymous).

    Shares the request's connection (FastAPI hands the same dependency to both).
    """
    header = request.headers.get("authorization")
    if not header:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise Unauthorized("send the token as 'Authorization: Bearer <token>'")
    return authenticate(conn, token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
