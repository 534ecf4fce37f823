"""The closed loop: moves between statuses, manual reassignment, re-assignment after a
boundary change. Every move is kept in the report's history and in the audit log, under the
name of who made it; each is checked against the moves table (`taxonomy.MOVES`) and the
report is read within the mover's scope (someone else's report is not found)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.grids.assignment import assignment_ctes, snap_params
from geo.identity import audit
from geo.identity.principal import SYSTEM, Principal
from geo.identity.scope import ReportScope, report_scope, scope_condition
from geo.reports import taxonomy
from geo.reports.record import add_event, get
from geo.settings import ReportSettings
from geo.vocabulary import OPEN_STATUSES, AssignmentMethod, ReportStatus, Role, sql_list

OPEN = sql_list(OPEN_STATUSES)
MANUAL = AssignmentMethod.MANUAL.value
S = ReportStatus


def _locked(conn: Connection, report_id: uuid.UUID, scope: ReportScope, columns: str) -> Any:
    """Return the report's row locked for the move; NotFound outside the scope."""
    scoped, params = scope_condition(scope)
    row = conn.execute(
        text(f"SELECT {columns} FROM reports r WHERE r.id = :id AND {scoped} FOR UPDATE"),
        {**params, "id": report_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no report with id {report_id}")
    return row


def _next_steps(frm: str) -> str:
    steps = [m for m in taxonomy.MOVES if m.frm == frm]
    if not steps:
        return "none: it is closed"
    return ", ".join(f"{m.to} (by {taxonomy.roles_text(m.roles)})" for m in steps)


def check_move(who: Principal, frm: str, to: str, grid_code: str | None) -> None:
    """Raise Conflict for a move the loop does not have, Forbidden for one `who` may not make."""
    move = taxonomy.MOVE_BY_STEP.get((frm, to))
    if move is None:
        raise Conflict(f"a {frm} report cannot move to {to}; allowed next: {_next_steps(frm)}")
    if who.role not in move.roles:
        raise Forbidden(
            f"a {frm} report is moved to {to} by {taxonomy.roles_text(move.roles)}; "
            f"you are logged in as {who.role or 'no role'}"
        )
    if who.role == Role.WORKER and grid_code not in who.grids:
        yours = ", ".join(who.grids) or "none"
        raise Forbidden(
            f"a worker checks resolved reports of their own grids ({yours}); this report is in "
            f"{'grid ' + grid_code if grid_code else 'no grid'}: its dispatcher makes this move"
        )


def transition(
    conn: Connection,
    report_id: uuid.UUID,
    to: str,
    who: Principal,
    note: str | None,
    level: str | None,
    rules: ReportSettings,
    sensitive_themes: tuple[str, ...],
) -> dict:
    """Move a report along the closed loop as `who`; return it as `who` sees it.

    NotFound outside their scope, Conflict on a move the loop does not have, Forbidden on a
    move their role does not make."""
    scope = report_scope(who, sensitive_themes)
    row = _locked(
        conn, report_id, scope, "r.status, r.theme, r.category, r.grid_code, r.resolution_level"
    )
    check_move(who, row.status, to, row.grid_code)
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
    new_level = row.resolution_level if keep_level else (level if resolving else None)
    conn.execute(
        text(
            f"UPDATE reports SET status = :to, status_changed_at = now(), updated_at = now(), "
            f"due_at = {due}, resolution_level = :level WHERE id = :id"
        ),
        {"to": to, "due_s": hours.get(to, 0) * 3600, "level": new_level, "id": report_id},
    )
    add_event(
        conn,
        report_id,
        "transition",
        from_status=row.status,
        to_status=to,
        actor=who.username,
        note=note,
        level=level if resolving else None,
    )
    changes: dict[str, list] = {"status": [row.status, to]}
    if new_level != row.resolution_level:
        changes["level"] = [row.resolution_level, new_level]
    audit.record(conn, who, "report.transition", "report", report_id, changes)
    return get(conn, report_id, scope)


def reassign(
    conn: Connection,
    report_id: uuid.UUID,
    grid_code: str,
    who: Principal,
    note: str | None,
    sensitive_themes: tuple[str, ...],
) -> dict:
    """Assign a report to a grid by hand (a dispatcher's decision) as `who`; return it as they
    see it. A dispatcher bound to districts assigns to the grids of those districts."""
    scope = report_scope(who, sensitive_themes)
    row = _locked(conn, report_id, scope, "r.grid_code, r.district_code")
    if who.role not in taxonomy.REASSIGN_ROLES:
        raise Forbidden(
            f"a report is reassigned by {taxonomy.roles_text(taxonomy.REASSIGN_ROLES)}; "
            f"you are logged in as {who.role or 'no role'}"
        )
    grid = conn.execute(
        text("SELECT code, district_code FROM grids WHERE code = :c"), {"c": grid_code}
    ).one_or_none()
    if grid is None:
        raise InvalidInput(f"no grid with code {grid_code!r} among the stored grids")
    if scope.districts is not None and grid.district_code not in scope.districts:
        raise Forbidden(
            f"grid {grid.code} lies in district {grid.district_code}, outside yours "
            f"({', '.join(scope.districts)}): a dispatcher of that district or a city-wide "
            "one reassigns across districts"
        )
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
        actor=who.username,
        note=note,
    )
    changes: dict[str, list] = {"grid": [row.grid_code, grid.code]}
    if grid.district_code != row.district_code:
        changes["district"] = [row.district_code, grid.district_code]
    audit.record(conn, who, "report.reassign", "report", report_id, changes)
    return get(conn, report_id, scope)


def reassign_open(conn: Connection, snap_m: float, note: str, who: Principal = SYSTEM) -> int:
    """Re-assign every open report after a boundary change, in one statement; return how many moved.

    Reports a dispatcher assigned by hand keep their grid unless it no longer exists.
    Each move is recorded in the report's history (old → new grid) under `who`'s name, and the
    whole re-assignment in one audit entry (`report.reassign_all`) with the number moved.
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
    SELECT id, 'reassigned', old, grid_code, :actor, :note FROM moved
    """
    moved = conn.execute(
        text(sql), {**snap_params(snap_m), "note": note, "actor": who.username}
    ).rowcount
    audit.record(conn, who, "report.reassign_all", "report", None, {"moved": moved, "note": note})
    return moved
