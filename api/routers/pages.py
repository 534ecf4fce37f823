"""The server-rendered pages: start page, campaign dashboard, the grid worker's phone page; and
what every page and map is asked for with (who is logged in, the language)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from api.deps import ConnDep, PagePrincipalDep, SettingsDep, VersionsDep, credentials, csrf_token
from api.security_headers import csp_nonce, permissions_policy
from geo.campaigns.visits import VISIT_ROLES
from geo.identity.scope import ReportScope, report_scope
from geo.reports import notify, reads
from geo.vocabulary import Role
from web import pages, phone
from web.pages import PageRequest
from web.templating import (
    BADGE_CAP,
    NOTIFICATION_WORDS,
    Session,
    clean_query,
    lang_url,
    navigation,
    notification_rows,
    render_template,
)

router = APIRouter(tags=["pages"])
Lang = Literal["zh", "en"]


def page_session(request: Request, conn: ConnDep, who: PagePrincipalDep) -> Session:
    """Return who a page is shown to, with the CSRF token of their session cookie (none for a
    page asked for with a bearer token) and their unread notifications (the badge)."""
    if who.role is None:
        raise ValueError("a logged-in principal has a role")
    token, from_cookie = credentials(request)
    csrf = csrf_token(token) if token is not None and from_cookie else ""
    unread = notify.unread_count(conn, who.user_id, cap=BADGE_CAP)
    return Session(who.username, who.name, who.role, csrf, unread)


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
    return html(phone.report(conn, v, page), headers=policy)


@router.get(
    phone.VISIT_PATH, response_class=HTMLResponse, summary="走访: a worker's campaign visits"
)
def visit_page(conn: ConnDep, who: PagePrincipalDep, page: PageDep) -> HTMLResponse:
    # Visits are made at the door by those who may send them (geo.campaigns.visits); like
    # the report form, it may locate the phone.
    if who.role not in VISIT_ROLES:
        return html(phone.forbidden(page, "visit_message"), 403)
    policy = {"Permissions-Policy": permissions_policy("geolocation")}
    return html(phone.visit(conn, page, who), headers=policy)


@router.get(phone.MINE_PATH, response_class=HTMLResponse, summary="我的上报: a worker's reports")
def my_reports_page(
    conn: ConnDep, settings: SettingsDep, who: PagePrincipalDep, page: PageDep, scope: ScopeDep
) -> HTMLResponse:
    if who.role != Role.WORKER or who.user_id is None:
        return html(phone.forbidden(page), 403)
    zone = settings.worktime.timezone
    body, shown = phone.my_reports(conn, page, who.user_id, scope.masked_themes, zone)
    # The list shows descriptions: a sensitive one shown unmasked is an audited read.
    if reads.record_reports(conn, who, scope, settings.auth.sensitive_themes, shown):
        conn.commit()
    return html(body)


@router.get(phone.CHECKS_PATH, response_class=HTMLResponse, summary="核查任务: a worker's checks")
def checks_page(
    conn: ConnDep, settings: SettingsDep, who: PagePrincipalDep, page: PageDep, scope: ScopeDep
) -> HTMLResponse:
    if who.role != Role.WORKER:
        return html(phone.forbidden(page), 403)
    zone = settings.worktime.timezone
    body, shown = phone.checks(conn, page, who.grids, scope.masked_themes, zone)
    if reads.record_reports(conn, who, scope, settings.auth.sensitive_themes, shown):
        conn.commit()
    return html(body)


@router.get(
    "/report-sw.js",
    response_class=FileResponse,
    summary="The phone pages' service worker (their copies for offline use)",
    responses={200: {"content": {"text/javascript": {"schema": {"type": "string"}}}}},
)
def phone_service_worker() -> FileResponse:
    # At the site's root so that it may control /report; revalidated on every visit, so that
    # a new version replaces the old at once. Its CSP binds the worker: it fetches this site.
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": "default-src 'none'; connect-src 'self'",
    }
    return FileResponse(phone.SERVICE_WORKER, media_type="text/javascript", headers=headers)


@router.get("/notifications", response_class=HTMLResponse, summary="The viewer's notifications")
def notifications_page(
    conn: ConnDep,
    settings: SettingsDep,
    who: PagePrincipalDep,
    page: PageDep,
    unread: bool = False,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    found = notify.notifications(conn, who.user_id, unread, 50, before)
    here = {"unread": "true"} if unread else {}
    older = {**here, "before": found["next_before"]} if found["next_before"] else None
    nav = navigation(page.path, page.query, page.lang, page.session)
    return html(
        render_template(
            "notifications.html",
            lang=page.lang,
            nav=nav,
            words=NOTIFICATION_WORDS[page.lang],
            rows=notification_rows(found, page.lang, settings.worktime.timezone),
            unread=found["unread"],
            unread_words=nav["user"]["unread_words"],
            unread_only=unread,
            all_href=lang_url(page.path, "", page.lang),
            unread_href=lang_url(page.path, "unread=true", page.lang),
            older_href=lang_url(page.path, urlencode(older), page.lang) if older else None,
        )
    )
