"""A department's inbox: the tasks dispatched to it, most urgent first, and the count behind
each of its filters (mine, unassigned, all).

A task is a report dispatched to the department (`dispatched`, `in_progress`) or resolved by it
and waiting for 核查 (`resolved`, shown read-only). Who sees which comes from the filter's
scope, as everywhere (`geo.identity.scope`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, text

from geo.reports import deadlines
from geo.reports.fragments import masked, masked_binds
from geo.reports.queries import ReportFilter, where_clause
from geo.settings import ReportSettings, WorkTimeSettings
from geo.vocabulary import ReportStatus, sql_list

S = ReportStatus
INBOX_STATUSES = (S.DISPATCHED, S.IN_PROGRESS, S.RESOLVED)
# The department's own clock: a resolved report past its 核查 limit waits on the checker, not
# on the department, so it is not marked late in the department's inbox.
LATE = f"(r.status IN {sql_list((S.DISPATCHED, S.IN_PROGRESS))} AND r.due_at < now())"
SUPERVISED = "r.supervised_at IS NOT NULL"


def inbox_filter(f: ReportFilter) -> ReportFilter:
    """Return `f` narrowed to the inbox's statuses (its scope, department and handler kept)."""
    return replace(f, status=tuple(str(s) for s in INBOX_STATUSES))


def counts(conn: Connection, f: ReportFilter, user_id: int | None) -> dict[str, int]:
    """Return the inbox's tasks within `f` (its handler ignored) counted per filter: `all`,
    `mine` (handled by `user_id`), `unassigned`, and how many are `late` and `supervised`."""
    where, params = where_clause(replace(inbox_filter(f), handler_id=None))
    row = (
        conn.execute(
            text(
                f"""
                SELECT count(*) AS all,
                  count(*) FILTER (WHERE r.handler_id = :me) AS mine,
                  count(*) FILTER (WHERE r.handler_id IS NULL) AS unassigned,
                  count(*) FILTER (WHERE {LATE}) AS late,
                  count(*) FILTER (WHERE {SUPERVISED} AND r.status <> :resolved) AS supervised
                FROM reports r WHERE {where}
                """
            ),
            {**params, "me": user_id if user_id is not None else -1, "resolved": S.RESOLVED},
        )
        .mappings()
        .one()
    )
    return {k: int(v) for k, v in row.items()}


def _select(f: ReportFilter) -> str:
    hide = masked(f.scope)
    return f"""
    SELECT r.id, r.theme, r.category, r.status, r.grid_code, g.name AS grid_name,
      r.department, h.username AS handler, r.reported_at, r.status_changed_at, r.due_at,
      now() AS now, {LATE} AS late, {SUPERVISED} AS supervised,
      CASE WHEN {hide} THEN NULL ELSE r.supervision_note END AS supervision_note,
      r.rework_count, r.return_count, r.resolution_level,
      CASE WHEN {hide} THEN NULL ELSE left(r.description, 200) END AS description,
      {hide} AS masked
    FROM reports r
    LEFT JOIN grids g ON g.code = r.grid_code
    LEFT JOIN users h ON h.id = r.handler_id
    """


def tasks(
    conn: Connection,
    f: ReportFilter,
    limit: int,
    offset: int,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
) -> list[dict]:
    """Return one page of the inbox's tasks within `f`: the open ones before those waiting for
    核查, late first, then 督办, then by due time; each with its stage's `time_left` (negative
    when late; None without a deadline) and whether that is `working` time."""
    where, params = where_clause(inbox_filter(f))
    params.update(masked_binds(f.scope))
    rows = conn.execute(
        text(
            f"""{_select(f)} WHERE {where}
            ORDER BY r.status = :resolved, {LATE} DESC, {SUPERVISED} DESC,
              r.due_at ASC NULLS LAST, r.reported_at, r.id
            LIMIT :limit OFFSET :offset"""
        ),
        {**params, "resolved": S.RESOLVED, "limit": limit, "offset": offset},
    ).mappings()
    return [{**row, **_clock(row, rules, worktime)} for row in rows]


def _clock(row: Mapping, rules: ReportSettings, worktime: WorkTimeSettings) -> dict:
    """The time left in a task's current stage, in the kind of time its limit counts."""
    limit = deadlines.limit_for(row["theme"], row["category"], row["status"], rules)
    if limit is None or row["due_at"] is None:
        return {"time_left": None, "working": False}
    now: datetime = row["now"]
    left = row["due_at"] - now
    if not limit.working:
        return {"time_left": left, "working": False}
    return {
        "time_left": deadlines.time_left(row["due_at"], now, limit, deadlines.calendar(worktime)),
        "working": True,
    }
