"""The maps (HTML): theme maps for everyone logged in, the flood coordinator's map for the
roles that coordinate. Each shows only what the viewer's scope holds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import ConnDep, FilterDep, PagePrincipalDep, SettingsDep, VersionsDep
from api.routers.pages import NonceDep, PageDep, ScopeDep, html
from geo.errors import InvalidInput, SetupError
from geo.reports.queries import ReportFilter
from web import assets, maps, pages, risk_map
from web.folium_page import with_nonce
from web.pages import PageRequest
from web.templating import navigation, with_session

router = APIRouter(tags=["maps"])


def _check_assets() -> None:
    if assets.missing():
        raise SetupError(
            "map assets are not built: run `make setup` (npm ci, python -m web.assets)"
        )


def _answer(page: str, cached: bool, r: PageRequest, nonce: str) -> HTMLResponse:
    # The map is cached for everyone who sees the same data; the navigation and the scripts'
    # nonce are this response's.
    page = with_session(page, navigation(r.path, r.query, r.lang, r.session))
    return html(with_nonce(page, nonce), headers={"X-Cache": "hit" if cached else "miss"})


@router.get(
    "/maps/flood/coordinator",
    response_class=HTMLResponse,
    summary="Flood coordinator's map: layers, ranked grids, hazards, draw-to-query (HTML)",
    responses={
        403: {
            "description": "for coordinators, dispatchers and administrators (a page saying so)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def coordinator_map(
    conn: ConnDep,
    settings: SettingsDep,
    v: VersionsDep,
    who: PagePrincipalDep,
    page: PageDep,
    scope: ScopeDep,
    nonce: NonceDep,
) -> HTMLResponse:
    if page.session is None or not page.session.opens_coordinator_map:
        return html(pages.forbidden(page, "coordinator"), 403)
    _check_assets()
    built, cached = risk_map.coordinator_map(
        conn, v, settings.risk, ReportFilter(scope=scope), who.sees_households,
        settings.auth.k_anonymity, page.lang, settings.maps,
    )  # fmt: skip
    return _answer(built, cached, page, nonce)


@router.get("/maps/{name}", response_class=HTMLResponse, summary="A theme's map (HTML)")
def theme_map(
    conn: ConnDep,
    settings: SettingsDep,
    name: str,
    f: FilterDep,
    v: VersionsDep,
    page: PageDep,
    nonce: NonceDep,
) -> HTMLResponse:
    theme = name  # the path names the theme; a ?theme= filter would be overruled by it
    if theme not in maps.THEMES:
        raise InvalidInput(f"unknown theme {theme!r}; one of: {', '.join(maps.THEMES)}")
    _check_assets()
    if theme != "all":
        f = ReportFilter(**{**f.__dict__, "theme": theme})
    query = f"?{page.query}" if page.query else ""
    built, cached = maps.theme_map(
        conn, v, theme, f, page.lang, query, settings.maps, settings.auth.k_anonymity
    )
    return _answer(built, cached, page, nonce)
