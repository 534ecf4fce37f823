"""Theme maps (HTML) for planners."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import ConnDep, FilterDep, SettingsDep, VersionsDep
from geo.errors import InvalidInput, SetupError
from geo.reports.queries import ReportFilter
from web import assets, maps, risk_map

router = APIRouter(tags=["maps"])


@router.get(
    "/maps/flood/coordinator",
    response_class=HTMLResponse,
    summary="Flood coordinator's map: layers, ranked grids, hazards, draw-to-query (HTML)",
)
def coordinator_map(
    conn: ConnDep, settings: SettingsDep, v: VersionsDep, lang: Literal["zh", "en"] = "zh"
) -> HTMLResponse:
    if assets.missing():
        raise SetupError(
            "map assets are not built: run `make setup` (npm ci, python -m web.assets)"
        )
    page, cached = risk_map.coordinator_map(conn, v, settings.risk, lang, settings.maps)
    return HTMLResponse(page, headers={"X-Cache": "hit" if cached else "miss"})


@router.get("/maps/{name}", response_class=HTMLResponse, summary="A theme's map (HTML)")
def theme_map(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    name: str,
    f: FilterDep,
    v: VersionsDep,
    lang: Literal["zh", "en"] = "zh",
) -> HTMLResponse:
    theme = name  # the path names the theme; a ?theme= filter would be overruled by it
    if theme not in maps.THEMES:
        raise InvalidInput(f"unknown theme {theme!r}; one of: {', '.join(maps.THEMES)}")
    if assets.missing():
        raise SetupError(
            "map assets are not built: run `make setup` (npm ci, python -m web.assets)"
        )
    if theme != "all":
        f = ReportFilter(**{**f.__dict__, "theme": theme})
    query = f"?{request.url.query}" if request.url.query else ""
    page, cached = maps.theme_map(conn, v, theme, f, lang, query, settings.maps)
    return HTMLResponse(page, headers={"X-Cache": "hit" if cached else "miss"})
