"""The dispatcher's queues: which open reports wait for what, their counts, one page of a
queue, a suspected duplicate beside its possible original, and the districts to filter by.

Every query applies the filter's scope (`queries.where_clause`), so a dispatcher bound to
districts sees their districts' queues only.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import Connection, text

from geo.identity.scope import ReportScope, scope_condition
from geo.reports import photos
from geo.reports.fragments import OVERDUE, UNASSIGNED, masked, masked_binds, point
from geo.reports.queries import ReportFilter, decode_cursor, encode_cursor, where_clause
from geo.vocabulary import OPEN_STATUSES, AreaLevel, ReportStatus, sql_list

OPEN = f"r.status IN {sql_list(OPEN_STATUSES)}"


class Queue(StrEnum):
    """A dispatcher's queue of open reports."""

    NEW = "new"  # 待受理: reported, to be accepted
    ACCEPTED = "accepted"  # 待派遣: accepted, to be dispatched
    UNASSIGNED = "unassigned"  # 无网格: no grid found, to be placed by hand
    DUPLICATES = "duplicates"  # 疑似重复: to be merged or accepted
    RETURNED = "returned"  # 回退: a department said it is not theirs
    OVERDUE = "overdue"  # 超期
    SUPERVISED = "supervised"  # 督办


S = ReportStatus
# Each queue's condition on an open `reports r`. A suspected duplicate waits while it is still
# to be accepted: merging is a move from `reported`, and accepting it says it is no duplicate.
CONDITIONS: dict[Queue, str] = {
    Queue.NEW: f"r.status = '{S.REPORTED}'",
    Queue.ACCEPTED: f"r.status = '{S.ACCEPTED}'",
    Queue.UNASSIGNED: UNASSIGNED,
    Queue.DUPLICATES: f"r.status = '{S.REPORTED}' AND r.possible_duplicate_of IS NOT NULL",
    Queue.RETURNED: f"r.status = '{S.RETURNED}'",
    Queue.OVERDUE: OVERDUE,
    Queue.SUPERVISED: "r.supervised_at IS NOT NULL",
}


def counts(conn: Connection, f: ReportFilter) -> dict[str, int]:
    """Return how many open reports within the filter wait in each queue (one scan)."""
    where, params = where_clause(f)
    columns = ", ".join(f"count(*) FILTER (WHERE {c}) AS {q}" for q, c in CONDITIONS.items())
    row = conn.execute(
        text(f"SELECT {columns} FROM reports r WHERE {where} AND {OPEN}"), params
    ).one()
    return {str(q): int(getattr(row, q)) for q in CONDITIONS}


def _columns(scope: ReportScope) -> str:
    hide = masked(scope)
    return f"""r.id, r.reported_at, r.theme, r.category, r.status, r.grid_code,
  g.name AS grid_name, r.district_code, r.department, r.due_at, {OVERDUE} AS overdue,
  r.possible_duplicate_of, r.supervised_at, r.return_count, {hide} AS masked,
  CASE WHEN {hide} THEN NULL ELSE r.description END AS description,
  CASE WHEN {hide} THEN NULL ELSE r.supervision_note END AS supervision_note,
  ST_X(s.pt) AS lon, ST_Y(s.pt) AS lat,
  (SELECT e.reason FROM report_events e WHERE e.report_id = r.id AND NOT {hide}
     AND e.to_status = '{S.RETURNED}' ORDER BY e.at DESC, e.id DESC LIMIT 1) AS return_reason"""


def queue_page(
    conn: Connection, f: ReportFilter, queue: Queue, limit: int, cursor: str | None = None
) -> dict:
    """Return one page of a queue, the longest waiting first: `rows` (dicts) and `next_cursor`
    (None on the last page). Masked themes come without description, notes or exact point."""
    where, params = where_clause(f)
    params.update(masked_binds(f.scope))
    if cursor:
        at, rid = decode_cursor(cursor)
        where += " AND (r.reported_at, r.id) > (:c_at, :c_id)"
        params.update(c_at=at, c_id=rid)
    rows = (
        conn.execute(
            text(
                f"""
                SELECT {_columns(f.scope)}
                FROM reports r LEFT JOIN grids g ON g.code = r.grid_code
                CROSS JOIN LATERAL (SELECT {point(f.scope)} AS pt) s
                WHERE {where} AND {OPEN} AND {CONDITIONS[queue]}
                ORDER BY r.reported_at, r.id
                LIMIT :limit
                """
            ),
            {**params, "limit": limit + 1},
        )
        .mappings()
        .all()
    )
    more = len(rows) > limit
    out = [dict(r) for r in rows[:limit]]
    last = out[-1] if more else None
    return {
        "rows": out,
        "next_cursor": encode_cursor(last["reported_at"], last["id"]) if last else None,
    }


def originals(conn: Connection, ids: list[uuid.UUID], scope: ReportScope) -> dict[str, dict]:
    """Return, per suspected duplicate (by id as text), its possible original as `scope` sees
    it, with the distance between the two in metres and the photos of both (`photos`,
    `dup_photos`); a duplicate whose original lies outside the scope is left out."""
    if not ids:
        return {}
    scoped, params = scope_condition(scope)
    hide = masked(scope)
    dup_hidden = hide.replace("r.theme", "d.theme")
    rows = (
        conn.execute(
            text(
                f"""
                SELECT d.id AS dup_id, r.id, r.reported_at, r.theme, r.category, r.status,
                  r.grid_code, r.reporter, {hide} AS masked, {dup_hidden} AS dup_masked,
                  CASE WHEN {hide} THEN NULL ELSE r.description END AS description,
                  CASE WHEN {hide} OR {dup_hidden} THEN NULL ELSE
                    round(ST_Distance(d.geom::geography, r.geom::geography)::numeric, 1)
                  END AS distance_m
                FROM reports d JOIN reports r ON r.id = d.possible_duplicate_of
                WHERE d.id = ANY(CAST(:ids AS uuid[])) AND {scoped}
                """
            ),
            {**params, **masked_binds(scope), "ids": [str(i) for i in ids]},
        )
        .mappings()
        .all()
    )
    pics = photos.for_reports(conn, [*ids, *(r["id"] for r in rows)])
    out = {}
    for r in rows:
        one = dict(r)
        if r["masked"]:
            one["reporter"] = None
        one["photos"] = [] if r["masked"] else pics[str(r["id"])]
        one["dup_photos"] = [] if r["dup_masked"] else pics[str(r["dup_id"])]
        out[str(r["dup_id"])] = one
    return out


def districts(conn: Connection, scope: ReportScope) -> list[dict]:
    """Return the districts (code, name) a queue may be filtered by: the scope's, else all."""
    where, params = "", {}
    if scope.districts is not None:
        where, params = " AND code = ANY(:codes)", {"codes": list(scope.districts)}
    rows = conn.execute(
        text(f"SELECT code, name FROM areas WHERE level = :level{where} ORDER BY code"),
        {"level": str(AreaLevel.DISTRICT), **params},
    ).mappings()
    return [dict(r) for r in rows]
