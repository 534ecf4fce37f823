"""The server-rendered pages: start page, campaign dashboard, the grid worker's phone page; and
what every page and map is asked for with (who is logged in, the language)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.deps import ConnDep, PagePrincipalDep, SettingsDep, VersionsDep, credentials, csrf_token
from api.security_headers import csp_nonce, permissions_policy
from geo.identity.scope import ReportScope, report_scope
from web import pages
from web.pages import PageRequest
from web.templating import Session, clean_query

router = APIRouter(tags=["pages"])
Lang = Literal["zh", "en"]


def page_session(request: Request, who: PagePrincipalDep) -> Session:
    """Return who a page is shown to, with the CSRF token of their session cookie (none for a
    page asked for with a bearer token)."""
    if who.role is None:
        raise ValueError("a logged-in principal has a role")
    token, from_cookie = credentials(request)
    csrf = csrf_token(token) if token is not None and from_cookie else ""
    return Session(who.username, who.name, who.role, csrf)


SessionDep = Annotated[Session, Depends(page_session)]


def page_request(request: Request, session: SessionDep, lang: Lang = "zh") -> PageRequest:
    """Return what a page is asked for with: path, query (re-encoded), language, session."""
    return PageRequest(request.url.path, clean_query(request.url.query), lang, session)


PageDep = Annotated[PageRequest, Depends(page_request)]
# The nonce of this response's Content-Security-Policy (api.security_headers).
NonceDep = Annotated[str, Depends(csp_nonce)]


def page_scope(who: PagePrincipalDep, settings: SettingsDep) -> ReportScope:
    """Return the reports the page's viewer may see (the same scope as the API's filters)."""
    return report_scope(who, settings.auth.sensitive_themes)


ScopeDep = Annotated[ReportScope, Depends(page_scope)]


def html(page: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """Return a page: never stored by a cache, since it names its viewer and holds their CSRF
    token (and the back button after logging out must not show it)."""
    return HTMLResponse(page, status, headers={**(headers or {}), "Cache-Control": "no-store"})


@router.get("/", response_class=HTMLResponse, summary="Start page: themes and campaigns")
def index_page(conn: ConnDep, page: PageDep, scope: ScopeDep) -> HTMLResponse:
    return html(pages.index(conn, page, scope))


@router.get("/dashboard", response_class=HTMLResponse, summary="Campaign dashboard")
def dashboard_page(conn: ConnDep, page: PageDep, scope: ScopeDep) -> HTMLResponse:
    return html(pages.dashboard(conn, page, scope))


@router.get("/report", response_class=HTMLResponse, summary="Phone page for grid workers (HTML)")
def report_page(conn: ConnDep, v: VersionsDep, page: PageDep) -> HTMLResponse:
    # One light page: it works on a weak connection and keeps unsent reports. The only page
    # that may locate the phone.
    policy = {"Permissions-Policy": permissions_policy("geolocation")}
    return html(pages.report(conn, v, page), headers=policy)
