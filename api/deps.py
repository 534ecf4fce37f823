"""Request dependencies: a pooled connection per request, settings, versions, principal, and
the parsers of shared query parameters (codes, bbox, the report filters)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator
from sqlalchemy import Connection, Engine

from api.schemas import IsoTime, plain_text
from geo.cache import Versions, versions
from geo.errors import Forbidden, InvalidInput, Unauthorized
from geo.identity import tokens
from geo.identity.principal import Principal
from geo.identity.scope import report_scope
from geo.reports import intake, queries, taxonomy
from geo.reports.queries import ReportFilter
from geo.settings import Settings
from geo.vocabulary import AssignmentMethod, ReportStatus
from geo.windows import check_window

# Grid, area, district and campaign codes: letters, digits, '_' and '-', at most 32.
CODE_PATTERN = r"^[0-9A-Za-z_-]+$"
OptionalCode = Annotated[str | None, Query(min_length=1, max_length=32, pattern=CODE_PATTERN)]
CodePath = Annotated[str, Path(max_length=32, pattern=CODE_PATTERN)]
# Free text in a query string (a theme, an actor, a cursor): plain text like the bodies', so a
# NUL or a bidi override answers 422 naming the parameter, never a 500 from PostgreSQL.
PlainQuery = AfterValidator(plain_text)
QueryText = Annotated[str | None, Query(max_length=64), PlainQuery]
# A time in a query: ISO 8601 only ("0.5" would be read as seconds since 1970).
QueryTime = Annotated[
    datetime | None,
    Query(description="ISO 8601 with an offset, e.g. 2024-08-22T00:00:00+08:00"),
    IsoTime,
]


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


SESSION_COOKIE = "riskgrid_session"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def csrf_token(session_token: str) -> str:
    """Return the CSRF token that goes with a session cookie: a page holds it, another site
    cannot compute it (it cannot read the cookie)."""
    return hashlib.sha256(b"riskgrid-csrf:" + session_token.encode()).hexdigest()


def credentials(request: Request) -> tuple[str | None, bool]:
    """Return (token, came from the session cookie) of a request; (None, False) for none."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            raise Unauthorized("send the token as 'Authorization: Bearer <token>'")
        return token, False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and len(cookie) <= 200:
        return cookie, True
    return None, False


def client_address(request: Request) -> str | None:
    """Return the IP address the request came from (what the audit log records), or None."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:  # a test client's or a socket's name, not an address
        return None


async def get_principal(request: Request, settings: SettingsDep, engine: EngineDep) -> Principal:
    """Return who sends the request (a bearer token, or a page's session cookie); 401 without.

    Async and cached per process for `auth.token_cache_s`: a request whose token was checked a
    moment ago takes no thread and no connection for it.
    """
    token, from_cookie = credentials(request)
    if token is None:
        raise Unauthorized(
            "log in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token gives one)"
        )
    if from_cookie and request.method not in _SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
            raise Forbidden("the X-CSRF-Token header is missing or wrong: reload the page")
    who = tokens.cached(token, settings.auth.token_cache_s)
    if who is None:
        who = await run_in_threadpool(_authenticate, engine, token)
    return who.in_request(request.state.request_id, client_address(request))


def _authenticate(engine: Engine, token: str) -> Principal:
    with engine.connect() as conn:
        return tokens.authenticate(conn, token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_optional_principal(
    request: Request, settings: SettingsDep, engine: EngineDep
) -> Principal | None:
    """Return who sends the request, or None for a request without valid credentials."""
    try:
        return await get_principal(request, settings, engine)
    except (Unauthorized, Forbidden):
        return None


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


class LoginRequired(Exception):
    """A page asked for without a valid login: the answer sends the browser to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


async def get_page_principal(
    request: Request, settings: SettingsDep, engine: EngineDep
) -> Principal:
    """Return who asks for a page; without a valid login, send them to the login page."""
    try:
        return await get_principal(request, settings, engine)
    except Unauthorized:
        query = f"?{request.url.query}" if request.url.query else ""
        raise LoginRequired(request.url.path + query) from None


PagePrincipalDep = Annotated[Principal, Depends(get_page_principal)]


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


def report_filter(
    settings: SettingsDep,
    who: PrincipalDep,
    theme: QueryText = None,
    category: QueryText = None,
    status: Annotated[list[ReportStatus] | None, Query()] = None,
    campaign: OptionalCode = None,
    grid: OptionalCode = None,
    district: OptionalCode = None,
    bbox: Annotated[
        str | None,
        Query(max_length=200, description="minlon,minlat,maxlon,maxlat"),
        AfterValidator(plain_text),
    ] = None,
    since: QueryTime = None,
    until: QueryTime = None,
    assignment: AssignmentMethod | None = None,
    overdue: bool | None = None,
    department: Annotated[str | None, Query(max_length=100), PlainQuery] = None,
    assigned: Annotated[
        queries.Assigned,
        Query(description="a department's inbox: handled by me, by nobody yet, or all"),
    ] = "all",
    supervised: Annotated[bool | None, Query(description="督办 flagged (or not)")] = None,
) -> ReportFilter:
    """The report filters shared by listing, export, statistics, hotspots and maps, checked
    before any SQL."""
    if theme is not None and theme not in taxonomy.THEME_BY_CODE:
        raise InvalidInput(f"unknown theme {theme!r}; one of: {', '.join(taxonomy.THEME_BY_CODE)}")
    if category is not None and theme is not None:
        intake.check_category(theme, category)
    check_window(since, until)
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
        department=department,
        handler_id=queries.handler_filter(assigned, who.user_id),
        supervised=supervised,
        scope=report_scope(who, settings.auth.sensitive_themes),
    )


FilterDep = Annotated[ReportFilter, Depends(report_filter)]
