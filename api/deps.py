"""Request dependencies: a pooled connection per request, settings, versions, principal, and
the parsers of shared query parameters (codes, bbox, the report filters)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy import Connection, Engine

from geo.cache import Versions, versions
from geo.errors import InvalidInput, Unauthorized
from geo.identity.tokens import ANONYMOUS, Principal, authenticate
from geo.reports import intake, taxonomy
from geo.reports.queries import ReportFilter
from geo.settings import Settings
from geo.vocabulary import AssignmentMethod, ReportStatus

# Grid, area, district and campaign codes: letters, digits, '_' and '-', at most 32.
CODE_PATTERN = r"^[0-9A-Za-z_-]+$"
OptionalCode = Annotated[str | None, Query(min_length=1, max_length=32, pattern=CODE_PATTERN)]
CodePath = Annotated[str, Path(max_length=32, pattern=CODE_PATTERN)]


async def get_settings_dep(request: Request) -> Settings:  # async: no thread hop
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[Connection]:
    # The engine (and its pool) is opened once in the app's lifespan, never per request.
    with request.app.state.engine.connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_engine(request: Request) -> Engine:  # async: no thread hop
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_versions(conn: ConnDep) -> Versions:
    """The data and boundary versions, read once per request and handed to every cache."""
    return versions(conn)


VersionsDep = Annotated[Versions, Depends(get_versions)]


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


def _check_window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until")
    for t in (since, until):
        if t is not None and t.tzinfo is None:
            raise InvalidInput(
                "since/until need a time zone offset, e.g. 2024-08-22T00:00:00+08:00"
            )


def report_filter(
    settings: SettingsDep,
    theme: Annotated[str | None, Query(max_length=64)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[ReportStatus] | None, Query()] = None,
    campaign: OptionalCode = None,
    grid: OptionalCode = None,
    district: OptionalCode = None,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    assignment: AssignmentMethod | None = None,
    overdue: bool | None = None,
) -> ReportFilter:
    """The report filters shared by listing, export, statistics, hotspots and maps, checked
    before any SQL."""
    if theme is not None and theme not in taxonomy.THEME_BY_CODE:
        raise InvalidInput(f"unknown theme {theme!r}; one of: {', '.join(taxonomy.THEME_BY_CODE)}")
    if category is not None and theme is not None:
        intake.check_category(theme, category)
    _check_window(since, until)
    return ReportFilter(
        theme=theme,
        category=category,
        status=tuple(s.value for s in status or ()),
        campaign=campaign,
        grid=grid,
        district=district,
        bbox=parse_bbox(bbox, settings.limits.max_bbox_deg2),
        since=since,
        until=until,
        assignment=assignment.value if assignment else None,
        overdue=overdue,
    )


FilterDep = Annotated[ReportFilter, Depends(report_filter)]
