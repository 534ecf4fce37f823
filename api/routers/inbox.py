"""The department inbox `/inbox`: the tasks dispatched to the viewer's department, filtered
mine / unassigned / all, late and 督办 first, with the moves they may make on each (接收, 回退
with a reason, 办结 with a level and an `after` photo), made by web/static/js/inbox.js through
the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import ConnDep, PagePrincipalDep, SettingsDep
from api.routers.pages import PageDep, ScopeDep, html
from geo.reports import inbox, queries, reads, taxonomy
from geo.reports.queries import ReportFilter
from geo.vocabulary import Role
from web import inbox as web_inbox

router = APIRouter(tags=["pages"])


@router.get(
    "/inbox",
    response_class=HTMLResponse,
    summary="A department's inbox: its tasks; take up, return with a reason, resolve (HTML)",
    responses={
        403: {
            "description": "for department users and administrators (a page saying so)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def inbox_page(
    conn: ConnDep,
    settings: SettingsDep,
    who: PagePrincipalDep,
    page: PageDep,
    scope: ScopeDep,
    assigned: queries.Assigned = "all",
    department: Annotated[str | None, Query(max_length=100)] = None,
    n: Annotated[int, Query(ge=1, le=10_000, description="page number")] = 1,
) -> HTMLResponse:
    if who.role not in web_inbox.INBOX_ROLES:
        return html(web_inbox.forbidden(page), 403)
    departments = sorted(taxonomy.departments(settings.reports.departments))
    # A department user's scope is their department; an admin looks at one or at all.
    chosen = department if who.role == Role.ADMIN and department in departments else None
    f = ReportFilter(scope=scope, department=chosen)
    handler = queries.handler_filter(assigned, who.user_id)
    counts = inbox.counts(conn, f, who.user_id)
    found = inbox.tasks(
        conn,
        ReportFilter(scope=scope, department=chosen, handler_id=handler),
        web_inbox.PAGE_SIZE + 1,
        (n - 1) * web_inbox.PAGE_SIZE,
        settings.reports,
        settings.worktime,
    )
    # The page shows descriptions: a sensitive one shown unmasked is an audited read.
    shown = [(t["id"], t["theme"]) for t in found[: web_inbox.PAGE_SIZE]]
    if reads.record_reports(conn, who, scope, settings.auth.sensitive_themes, shown):
        conn.commit()
    return html(
        web_inbox.inbox_page(
            page,
            who,
            settings,
            counts,
            found,
            n,
            assigned,
            chosen,
            departments,
        )
    )
