"""The server-rendered pages: start page, campaign dashboard, the grid worker's phone page."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import ConnDep, VersionsDep
from web import pages

router = APIRouter(tags=["pages"])
Lang = Literal["zh", "en"]


@router.get("/", response_class=HTMLResponse, summary="Start page: themes and campaigns")
def index_page(request: Request, conn: ConnDep, lang: Lang = "zh") -> HTMLResponse:
    return HTMLResponse(pages.index(conn, lang, request.url.path, request.url.query))


@router.get("/dashboard", response_class=HTMLResponse, summary="Campaign dashboard")
def dashboard_page(request: Request, conn: ConnDep, lang: Lang = "zh") -> HTMLResponse:
    return HTMLResponse(pages.dashboard(conn, lang, request.url.path, request.url.query))


@router.get("/report", response_class=HTMLResponse, summary="Phone page for grid workers (HTML)")
def report_page(request: Request, conn: ConnDep, v: VersionsDep, lang: Lang = "zh") -> HTMLResponse:
    # One light page: it works on a weak connection and keeps unsent reports.
    return HTMLResponse(pages.report(conn, v, lang, request.url.path, request.url.query))
