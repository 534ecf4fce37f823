"""The dispatcher's console and a report's page (HTML): queues with bulk moves for dispatchers
and admins; a report's map, photos, history, clock and allowed moves for whoever may see it."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import ConnDep, OptionalCode, PagePrincipalDep, PlainQuery, SettingsDep
from api.routers.pages import PageDep, ScopeDep, html
from geo.errors import NotFound
from geo.identity.scope import report_scope
from geo.reports import loop, reads, record
from geo.reports.queues import Queue
from web import console as web_console
from web import console_report
from web.console import CONSOLE_ROLES, ConsoleQuery

router = APIRouter(tags=["pages"])
Code = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_]+$")]


@router.get("/console", response_class=HTMLResponse, summary="The dispatcher's console (HTML)")
def console_page(
    conn: ConnDep,
    settings: SettingsDep,
    who: PagePrincipalDep,
    page: PageDep,
    scope: ScopeDep,
    queue: Queue = Queue.NEW,
    theme: Code = None,
    category: Code = None,
    district: OptionalCode = None,
    age: Literal["1d", "3d", "7d", "older"] | None = None,
    cursor: Annotated[str | None, Query(max_length=200), PlainQuery] = None,
) -> HTMLResponse:
    if page.session is None or page.session.role not in CONSOLE_ROLES:
        return html(web_console.forbidden(page), 403)
    q = ConsoleQuery(queue, theme, category, district, age, cursor)
    body, shown = web_console.console(conn, q, scope, settings, page)
    # The queues show descriptions: a sensitive one shown unmasked is an audited read.
    if reads.record_reports(conn, who, scope, settings.auth.sensitive_themes, shown):
        conn.commit()
    return html(body)


@router.get(
    "/console/reports/{report_id}",
    response_class=HTMLResponse,
    summary="One report: map, photos, history, stage clock, the moves you may make (HTML)",
)
def report_page(
    conn: ConnDep,
    settings: SettingsDep,
    who: PagePrincipalDep,
    page: PageDep,
    report_id: uuid.UUID,
) -> HTMLResponse:
    sensitive = settings.auth.sensitive_themes
    scope = report_scope(who, sensitive)
    try:
        report = record.get(conn, report_id, scope)
    except NotFound:
        return html(console_report.not_found(page), 404)
    report["moves"] = loop.moves_for(who, report)
    if reads.record_report(conn, who, scope, sensitive, report):
        conn.commit()  # the audit entry of the read, written in the same transaction
    return html(console_report.report_page(report, settings, page))
