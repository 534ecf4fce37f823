"""The audit log, for administrators: who did what, when, from where."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import (
    ConnDep,
    PlainQuery,
    PrincipalDep,
    QueryText,
    QueryTime,
    SettingsDep,
)
from api.errors import error_response
from geo.errors import Forbidden
from geo.identity import audit
from geo.vocabulary import Role
from geo.windows import check_window

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get(
    "/audit",
    summary="Audit log entries, newest first (administrators)",
    responses={403: error_response(403, "only administrators read the audit log")},
)
def audit_entries(
    conn: ConnDep,
    who: PrincipalDep,
    settings: SettingsDep,
    response: Response,
    actor: QueryText = None,
    action: Annotated[
        str | None, Query(max_length=64, pattern=r"^[a-z_.]+\*?$"), PlainQuery
    ] = None,
    object: QueryText = None,
    since: QueryTime = None,
    until: QueryTime = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200), PlainQuery] = None,
) -> dict:
    if who.role != Role.ADMIN:
        raise Forbidden("only administrators read the audit log")
    check_window(since, until)
    response.headers["Cache-Control"] = "no-store"
    f = audit.AuditFilter(actor, action, object, since, until)
    return audit.entries(conn, f, limit, cursor)
