"""Reading reports back: filtered GeoJSON pages, CSV export and statistics."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Engine, text

from geo.db.copy import copy_out
from geo.db.engine import driver_sql
from geo.errors import InvalidInput
from geo.exports import inert_sql
from geo.geojson import collection
from geo.identity.scope import EVERYTHING, ReportScope, scope_condition
from geo.reports.fragments import (
    CLOSED_UNWORKED,
    OVERDUE,
    RESOLVED,
    UNASSIGNED,
    masked,
    masked_binds,
    point,
    point_within,
)
from geo.vocabulary import AT_OR_BELOW_STREET


@dataclass(frozen=True)
class ReportFilter:
    """Which reports a query asks for; values are validated before they get here."""

    theme: str | None = None
    category: str | None = None
    status: tuple[str, ...] = ()
    campaign: str | None = None
    grid: str | None = None
    district: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    since: datetime | None = None
    until: datetime | None = None
    assignment: str | None = None
    overdue: bool | None = None
    department: str | None = None
    # A handler's user id, or 0 for reports nobody handles yet (a department's unassigned).
    handler_id: int | None = None
    supervised: bool | None = None  # 督办
    on_site: bool | None = None  # 自行处置: fixed on the spot by the grid worker
    # Who asks: the reports they may see (the API always sets it from the principal).
    scope: ReportScope = EVERYTHING


# A department's inbox: the reports handled by me, by nobody yet, or all.
Assigned = Literal["mine", "unassigned", "all"]


def handler_filter(assigned: Assigned, user_id: int | None) -> int | None:
    """Return ReportFilter.handler_id for an inbox view (-1 for `mine` without a user id: no
    report is nobody's own)."""
    return {"mine": user_id or -1, "unassigned": 0}.get(assigned)


def where_clause(f: ReportFilter) -> tuple[str, dict]:
    """Return the SQL condition (on `reports r`) and bind values for a filter, within its
    scope."""
    scoped, p = scope_condition(f.scope)
    c: list[str] = [scoped]
    for column, value in (
        ("theme", f.theme),
        ("category", f.category),
        ("campaign_code", f.campaign),
        ("grid_code", f.grid),
        ("district_code", f.district),
        ("assignment_method", f.assignment),
        ("department", f.department),
    ):
        if value is not None:
            c.append(f"r.{column} = :{column}")
            p[column] = value
    if f.status:
        c.append("r.status = ANY(:statuses)")
        p["statuses"] = list(f.status)
    if f.bbox is not None:
        # A masked report is found where it is shown: a small box cannot place it.
        c.append(point_within(f.scope, "{pt} && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"))
        p.update(dict(zip(("minx", "miny", "maxx", "maxy"), f.bbox, strict=True)))
        p.update(masked_binds(f.scope))
    if f.since is not None:
        c.append("r.reported_at >= :since")
        p["since"] = f.since
    if f.until is not None:
        c.append("r.reported_at < :until")
        p["until"] = f.until
    if f.overdue is not None:
        c.append(OVERDUE if f.overdue else f"NOT {OVERDUE}")
    if f.handler_id == 0:
        c.append("r.handler_id IS NULL")
    elif f.handler_id is not None:
        c.append("r.handler_id = :handler_id")
        p["handler_id"] = f.handler_id
    if f.supervised is not None:
        c.append("r.supervised_at IS " + ("NOT NULL" if f.supervised else "NULL"))
    if f.on_site is not None:
        c.append("r.on_site" if f.on_site else "NOT r.on_site")
    return " AND ".join(c), p


def encode_cursor(reported_at: datetime, report_id: uuid.UUID) -> str:
    """Return an opaque cursor for the position after this report."""
    return base64.urlsafe_b64encode(f"{reported_at.isoformat()}|{report_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Return the (reported_at, id) a cursor stands for; InvalidInput when it is not one of ours."""
    try:
        at, rid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(at), uuid.UUID(rid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor is not valid: use the `next` link of the previous page"
        ) from None


def _feature(scope: ReportScope) -> str:
    """The GeoJSON Feature of `reports r` (grid `g`) as this scope may see it."""
    hide = masked(scope)
    return f"""json_build_object(
  'type', 'Feature', 'id', r.id,
  'geometry', ST_AsGeoJSON({point(scope)}, 7)::json,
  'properties', json_build_object(
    'id', r.id, 'theme', r.theme, 'category', r.category, 'severity', r.severity,
    'status', r.status, 'grid', r.grid_code, 'grid_name', g.name, 'district', r.district_code,
    'assignment', r.assignment_method,
    'distance_m', CASE WHEN {hide} THEN NULL ELSE round(r.assignment_distance_m::numeric, 1) END,
    'department', r.department, 'campaign', r.campaign_code,
    'reporter', CASE WHEN {hide} THEN NULL ELSE r.reporter END,
    'reported_at', r.reported_at, 'due_at', r.due_at,
    'overdue', {OVERDUE},
    'resolution_level', r.resolution_level, 'possible_duplicate_of', r.possible_duplicate_of,
    'description', CASE WHEN {hide} THEN NULL ELSE r.description END,
    'masked', {hide}))"""


def page(conn: Connection, f: ReportFilter, limit: int, cursor: str | None) -> bytes:
    """Return one page of reports, newest first, as GeoJSON bytes (`next_cursor` when more);
    reports of the themes the filter's scope masks are shown masked."""
    return shown_page(conn, f, limit, cursor)[0]


def shown_page(
    conn: Connection, f: ReportFilter, limit: int, cursor: str | None
) -> tuple[bytes, list[tuple[uuid.UUID, str]]]:
    """Return `page` and the (id, theme) of each report on it (for the audit of what a reader
    was shown: geo.reports.reads)."""
    where, params = where_clause(f)
    params.update(masked_binds(f.scope))
    if cursor:
        at, rid = decode_cursor(cursor)
        where += " AND (r.reported_at, r.id) < (:c_at, :c_id)"
        params.update(c_at=at, c_id=rid)
    rows = conn.execute(
        text(
            f"""
            SELECT r.reported_at, r.id, r.theme, {_feature(f.scope)}::text AS feature
            FROM reports r LEFT JOIN grids g ON g.code = r.grid_code
            WHERE {where}
            ORDER BY r.reported_at DESC, r.id DESC
            LIMIT :limit
            """
        ),
        {**params, "limit": limit + 1},
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    extra: dict[str, object] = {"numberReturned": len(rows)}
    if more:
        extra["next_cursor"] = encode_cursor(rows[-1].reported_at, rows[-1].id)
    body = collection((r.feature.encode() for r in rows), extra)
    return body, [(r.id, r.theme) for r in rows]


def _csv_columns(scope: ReportScope) -> str:
    """The CSV columns of `reports r` (grid `g`) as this scope may see them."""
    hide = masked(scope)
    return f"""
  r.id, r.reported_at, r.theme, r.category, r.severity, r.status,
  round(ST_X(s.pt)::numeric, 7) AS lon, round(ST_Y(s.pt)::numeric, 7) AS lat,
  CASE WHEN {hide} THEN NULL ELSE r.accuracy_m END AS accuracy_m,
  r.grid_code, {inert_sql("g.name")} AS grid_name, r.district_code, r.assignment_method,
  CASE WHEN {hide} THEN NULL ELSE round(r.assignment_distance_m::numeric, 1) END
    AS assignment_distance_m,
  r.department, r.resolution_level, r.campaign_code,
  CASE WHEN {hide} THEN NULL ELSE {inert_sql("r.reporter")} END AS reporter, r.due_at,
  {OVERDUE} AS overdue,
  r.possible_duplicate_of,
  CASE WHEN {hide} THEN NULL ELSE {inert_sql("r.description")} END AS description,
  {hide} AS masked
"""


def export_csv(engine: Engine, f: ReportFilter) -> Iterator[bytes]:
    """Yield the matching reports as CSV (UTF-8 with BOM, so Excel shows Chinese text);
    reports of the themes the filter's scope masks are written masked."""
    where, params = where_clause(f)
    params.update(masked_binds(f.scope))
    # COPY runs on the driver connection, which takes %(name)s binds.
    sql = driver_sql(
        f"COPY (SELECT {_csv_columns(f.scope)} FROM reports r "
        f"CROSS JOIN LATERAL (SELECT {point(f.scope)} AS pt) s "
        "LEFT JOIN grids g ON g.code = r.grid_code "
        f"WHERE {where} ORDER BY r.reported_at DESC, r.id DESC) TO STDOUT WITH (FORMAT csv, HEADER)"
    )
    yield "\ufeff".encode()
    with engine.connect() as conn:
        yield from copy_out(conn, sql, params)


def stats(conn: Connection, f: ReportFilter) -> dict:
    """Return counts by status and theme, resolution rates and overdue counts."""
    where, params = where_clause(f)
    base = f"FROM reports r WHERE {where}"
    totals = (
        conn.execute(
            text(
                f"""
            SELECT count(*) AS total,
              count(*) FILTER (WHERE {RESOLVED}) AS resolved,
              count(*) FILTER (WHERE {CLOSED_UNWORKED}) AS closed_other,
              count(*) FILTER (WHERE {RESOLVED} AND r.resolution_level = ANY(:low))
                AS resolved_low,
              count(*) FILTER (WHERE {OVERDUE}) AS overdue,
              count(*) FILTER (WHERE {UNASSIGNED}) AS unassigned
            {base}
            """
            ),
            {**params, "low": list(AT_OR_BELOW_STREET)},
        )
        .mappings()
        .one()
    )

    def grouped(column: str, extra: str = "", limit: int = 1000) -> dict:
        rows = conn.execute(
            text(
                f"SELECT {column} AS k, count(*) AS n {base} {extra} "
                f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(limit)}"
            ),
            params,
        ).all()
        return {str(r.k): int(r.n) for r in rows}

    overdue = f"AND {OVERDUE}"
    actionable = totals["total"] - totals["closed_other"]
    return {
        "total": totals["total"],
        "by_status": grouped("r.status"),
        "by_theme": grouped("r.theme"),
        "by_level": grouped("COALESCE(r.resolution_level, 'unresolved')"),
        "resolved": totals["resolved"],
        "resolution_rate": round(totals["resolved"] / actionable, 4) if actionable else None,
        "resolved_at_street_or_below": totals["resolved_low"],
        "share_resolved_at_street_or_below": (
            round(totals["resolved_low"] / totals["resolved"], 4) if totals["resolved"] else None
        ),
        "unassigned": totals["unassigned"],
        "overdue": totals["overdue"],
        "overdue_by_department": grouped("r.department", overdue),
        "overdue_by_grid": grouped("COALESCE(r.grid_code, 'unassigned')", overdue, limit=100),
    }


def time_range(conn: Connection, f: ReportFilter) -> tuple[datetime | None, datetime | None]:
    """Return the first and last reported_at among the matching reports."""
    where, params = where_clause(f)
    row = conn.execute(
        text(f"SELECT min(r.reported_at), max(r.reported_at) FROM reports r WHERE {where}"), params
    ).one()
    return row[0], row[1]


def weekly_counts(conn: Connection, f: ReportFilter) -> list[tuple[datetime, int, int]]:
    """Return (week start, reports, resolved) per week among the matching reports."""
    where, params = where_clause(f)
    rows = conn.execute(
        text(
            f"""
            SELECT date_trunc('week', r.reported_at) AS week, count(*) AS n,
                   count(*) FILTER (WHERE {RESOLVED}) AS resolved
            FROM reports r WHERE {where} GROUP BY 1 ORDER BY 1
            """
        ),
        params,
    ).all()
    return [(r.week, int(r.n), int(r.resolved)) for r in rows]
