"""The campaign pages (HTML): every campaign, and one campaign's figures, charts, coverage map
and checklist, for every logged-in role (the API they read applies its own rules)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import CodePath, ConnDep, SettingsDep
from api.routers.pages import PageDep, html
from geo.errors import NotFound
from web import campaign_page as web_campaign

router = APIRouter(tags=["pages"])


@router.get("/campaigns", response_class=HTMLResponse, summary="Every campaign (HTML)")
def campaigns_page(conn: ConnDep, page: PageDep) -> HTMLResponse:
    return html(web_campaign.listing(conn, page))


@router.get(
    "/campaigns/{code}",
    response_class=HTMLResponse,
    summary="One campaign: figures, progress charts, coverage map, checklist (HTML)",
)
def campaign_page(
    conn: ConnDep, settings: SettingsDep, page: PageDep, code: CodePath
) -> HTMLResponse:
    try:
        shown = web_campaign.page(
            conn, page, code, settings.worktime.timezone, settings.auth.k_anonymity
        )
    except NotFound:
        return html(web_campaign.not_found(page, code), 404)
    return html(shown)
