"""The closed loop: moves between statuses, manual reassignment, re-assignment after a
boundary change. Every move is kept in the report's history."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, text

from geo.errors import Conflict, InvalidInput, NotFound
from geo.grids.assignment import assignment_ctes, snap_params
from geo.reports import taxonomy
from geo.reports.record import add_event, get
from geo.settings import ReportSettings
from geo.vocabulary import OPEN_STATUSES, AssignmentMethod, ReportStatus, sql_list

OPEN = sql_list(OPEN_STATUSES)
MANUAL = AssignmentMethod.MANUAL.value
S = ReportStatus


def transition(
    conn: Connection,
    report_id: uuid.UUID,
    to: str,
    actor: str,
    note: str | None,
    level: str | None,
    rules: ReportSettings,
) -> dict:
    """Move a report along the closed loop; Conflict on a move the loop does not allow."""
    row = conn.execute(
        text("SELECT status, theme, category FROM reports WHERE id = :id FOR UPDATE"),
        {"id": report_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no report with id {report_id}")
    allowed = taxonomy.TRANSITIONS[row.status]
    if to not in allowed:
        nxt = ", ".join(allowed) if allowed else "none: it is closed"
        raise Conflict(f"a {row.status} report cannot move to {to}; allowed next: {nxt}")
    resolving = to == ReportStatus.RESOLVED
    if resolving and level is None:
        raise InvalidInput(
            "level is required to resolve a report: where was it resolved? "
            f"one of: {', '.join(taxonomy.LEVELS)}"
        )
    hours = taxonomy.stage_hours(row.theme, row.category, rules.time_limits_h)
    due = "now() + make_interval(secs => :due_s)" if to in hours else "NULL"
    # Resolving records where; moving back to work clears it; verifying keeps it.
    keep_level = to not in (S.RESOLVED, S.IN_PROGRESS, S.DISPATCHED)
    conn.execute(
        text(
            f"UPDATE reports SET status = :to, status_changed_at = now(), updated_at = now(), "
            f"due_at = {due}, resolution_level = {'resolution_level' if keep_level else ':level'} "
            "WHERE id = :id"
        ),
        {
            "to": to,
            "due_s": hours.get(to, 0) * 3600,
            "level": level if resolving else None,
            "id": report_id,
        },
    )
    add_event(
        conn,
        report_id,
        "transition",
        from_status=row.status,
        to_status=to,
        actor=actor,
        note=note,
        level=level if resolving else None,
    )
    return get(conn, report_id)


def reassign(
    conn: Connection, report_id: uuid.UUID, grid_code: str, actor: str, note: str | None
) -> dict:
    """Assign a report to a grid by hand (a coordinator's decision), kept in its history."""
    row = conn.execute(
        text("SELECT grid_code FROM reports WHERE id = :id FOR UPDATE"), {"id": report_id}
    ).one_or_none()
    if row is None:
        raise NotFound(f"no report with id {report_id}")
    grid = conn.execute(
        text("SELECT code, district_code FROM grids WHERE code = :c"), {"c": grid_code}
    ).one_or_none()
    if grid is None:
        raise InvalidInput(f"no grid with code {grid_code!r} among the stored grids")
    conn.execute(
        text(
            "UPDATE reports SET grid_code = :g, district_code = :d, assignment_method = :manual,"
            " assignment_distance_m = NULL, near_boundary_code = NULL, near_boundary_m = NULL,"
            " updated_at = now() WHERE id = :id"
        ),
        {"g": grid.code, "d": grid.district_code, "id": report_id, "manual": MANUAL},
    )
    add_event(
        conn,
        report_id,
        "reassigned",
        from_grid=row.grid_code,
        to_grid=grid.code,
        actor=actor,
        note=note,
    )
    return get(conn, report_id)


def reassign_open(conn: Connection, snap_m: float, note: str) -> int:
    """Re-assign every open report after a boundary change, in one statement; return how many moved.

    Reports a coordinator assigned by hand keep their grid unless it no longer exists.
    Each move is recorded in the report's history (old → new grid).
    """
    sql = f"""
    WITH src AS (
      SELECT id, geom, grid_code AS old FROM reports
      WHERE status IN {OPEN} AND (assignment_method <> '{MANUAL}' OR grid_code IS NULL)
    ),
    {assignment_ctes("src")},
    moved AS (
      UPDATE reports r SET grid_code = a.grid_code, assignment_method = a.method,
        assignment_distance_m = a.distance_m,
        district_code = COALESCE(a.district_code, r.district_code),
        near_boundary_code = NULL, near_boundary_m = NULL, updated_at = now()
      FROM assigned a JOIN src ON src.id = a.id
      WHERE r.id = a.id
        AND (a.grid_code IS DISTINCT FROM src.old OR r.assignment_method = '{MANUAL}')
      RETURNING r.id, src.old, a.grid_code
    )
    INSERT INTO report_events (report_id, kind, from_grid, to_grid, actor, note)
    SELECT id, 'reassigned', old, grid_code, 'system', :note FROM moved
    """
    return conn.execute(text(sql), {**snap_params(snap_m), "note": note}).rowcount
