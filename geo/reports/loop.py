"""The closed loop: moves between statuses, manual reassignment, re-assignment after a
boundary change. Every move is kept in the report's history and in the audit log, under the
name of who made it; each is checked against the moves table (`taxonomy.MOVES`) and the
report is read within the mover's scope (someone else's report is not found)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.grids.assignment import assignment_ctes, snap_params
from geo.identity import audit
from geo.identity.principal import SYSTEM, Principal
from geo.identity.scope import ReportScope, report_scope, scope_condition
from geo.reports import deadlines, photos, record, taxonomy
from geo.reports.notify import emit
from geo.reports.record import add_event, get
from geo.settings import ReportSettings, Settings
from geo.vocabulary import (
    OPEN_STATUSES,
    AssignmentMethod,
    NotificationKind,
    ReportStatus,
    Role,
    sql_list,
)

OPEN = sql_list(OPEN_STATUSES)
MANUAL = AssignmentMethod.MANUAL.value
S = ReportStatus
K = NotificationKind


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


@dataclass(frozen=True)
class MoveRequest:
    """A move along the loop as asked: `to` and what the move needs (taxonomy.NEEDS)."""

    to: str
    note: str | None = None
    reason: str | None = None
    level: str | None = None
    department: str | None = None
    handler: str | None = None  # a department user's username
    duplicate_of: uuid.UUID | None = None


_ROW = (
    "r.id, r.status, r.status_changed_at, r.theme, r.category, r.grid_code, r.district_code, "
    "r.resolution_level, r.department, r.handler_id, r.reporter_id, r.on_site, now() AS now"
)


# One round trip for the move: the row updated, its history's step, the audit entry, and the
# answer's row read back from what the update returned.
_MOVE = text(
    f"""
    WITH r AS (
      UPDATE reports SET status = :to, status_changed_at = now(), updated_at = now(),
        due_at = :due_at, resolution_level = :u_level, department = :u_department,
        handler_id = :u_handler_id, duplicate_of = COALESCE(:dup, duplicate_of),
        overdue_noticed_at = NULL, escalated_at = NULL,
        return_count = return_count + :returned, rework_count = rework_count + :reworked
      WHERE id = :id RETURNING *
    ),
    step AS ({record.EVENT_SQL}),
    entry AS ({audit.INSERT_SQL})
    {record.report_select("r")}
    """
)


def check_move(who: Principal, frm: str, to: str, row: Any) -> None:
    """Raise Conflict for a move the loop does not have, Forbidden for one `who` may not make."""
    move = taxonomy.MOVE_BY_STEP.get((frm, to))
    if move is None:
        raise Conflict(f"a {frm} report cannot move to {to}; allowed next: {_next_steps(frm)}")
    if who.role not in move.roles:
        raise Forbidden(
            f"a {frm} report is moved to {to} by {taxonomy.roles_text(move.roles)}; "
            f"you are logged in as {who.role or 'no role'}"
        )
    if who.role == Role.WORKER and frm == S.RESOLVED and row.on_site:
        raise Forbidden(
            "a fix made on the spot (自行处置) is checked by a dispatcher, not by a grid worker"
        )
    if who.role == Role.WORKER and row.grid_code not in who.grids:
        yours = ", ".join(who.grids) or "none"
        grid = f"grid {row.grid_code}" if row.grid_code else "no grid"
        raise Forbidden(
            f"a worker checks resolved reports of their own grids ({yours}); this report is in "
            f"{grid}: its dispatcher makes this move"
        )


def moves_for(who: Principal, report: dict) -> list[dict]:
    """Return the moves `who` may make now on a report they see (its answer): each with what
    it needs, for screens that offer only those."""
    out = []
    for move in taxonomy.MOVES:
        if move.frm != report["status"] or who.role not in move.roles:
            continue
        grid = (report.get("grid") or {}).get("code")
        if who.role == Role.WORKER and (grid not in who.grids or report.get("on_site")):
            continue
        need = taxonomy.NEEDS.get((move.frm, move.to))
        out.append({"to": str(move.to), "needs": [need] if need else []})
    return out


def _needs(frm: str, m: MoveRequest) -> None:
    need = taxonomy.NEEDS.get((frm, m.to))
    if need is not None and getattr(m, need) in (None, ""):
        hint = {
            "reason": "say why in `reason`",
            "duplicate_of": "name the report it duplicates in `duplicate_of`",
            "level": f"where was it resolved? `level`, one of: {', '.join(taxonomy.LEVELS)}",
        }[need]
        raise InvalidInput(f"moving a {frm} report to {m.to} needs {need}: {hint}")


def _department(m: MoveRequest, row: Any, rules: ReportSettings) -> str:
    name = m.department or row.department
    known = taxonomy.departments(rules.departments)
    if name is None:
        raise InvalidInput("a dispatch names the department that handles it: `department`")
    if name not in known:
        raise InvalidInput(
            f"unknown department {name!r}; one of the routing table's: {', '.join(sorted(known))}"
        )
    return name


def _handler(conn: Connection, username: str | None, department: str) -> int | None:
    if username is None:
        return None
    user = conn.execute(
        text("SELECT id, role, department FROM users WHERE username = :u AND disabled_at IS NULL"),
        {"u": username},
    ).one_or_none()
    if user is None or user.role != Role.DEPARTMENT or user.department != department:
        raise InvalidInput(
            f"handler {username!r} is not an active user of {department}: name one of its "
            "department users, or leave the handler out"
        )
    return int(user.id)


def _original(conn: Connection, m: MoveRequest, row: Any, scope: ReportScope) -> uuid.UUID:
    target = m.duplicate_of
    scoped, params = scope_condition(scope)
    other = conn.execute(
        text(f"SELECT r.id, r.status, r.duplicate_of FROM reports r WHERE r.id = :o AND {scoped}"),
        {**params, "o": target},
    ).one_or_none()
    if other is None or other.id == row.id:
        raise InvalidInput(f"duplicate_of: no other report with id {target} that you can see")
    if other.status == S.DUPLICATE:
        raise InvalidInput(
            f"duplicate_of: report {target} is itself a duplicate of {other.duplicate_of}: "
            "name that one"
        )
    return other.id


def transition(
    conn: Connection,
    report_id: uuid.UUID,
    m: MoveRequest,
    who: Principal,
    settings: Settings,
) -> dict:
    """Move a report along the closed loop as `who`; return it as `who` sees it.

    NotFound outside their scope, Conflict on a move the loop does not have, Forbidden on a
    move their role does not make, InvalidInput when the move lacks what it needs."""
    scope = report_scope(who, settings.auth.sensitive_themes)
    row = _locked(conn, report_id, scope, _ROW)
    frm, to = row.status, m.to
    check_move(who, frm, to, row)
    _needs(frm, m)
    sets = {"department": row.department, "handler_id": row.handler_id}
    duplicate_of = None
    if to == S.DISPATCHED:
        sets["department"] = _department(m, row, settings.reports)
        sets["handler_id"] = _handler(conn, m.handler, sets["department"])
    elif to == S.IN_PROGRESS and frm == S.DISPATCHED and row.handler_id is None:
        sets["handler_id"] = who.user_id  # taking it up makes it theirs
    elif to == S.RETURNED:
        sets["handler_id"] = None
    elif to == S.IN_PROGRESS and frm == S.RESOLVED and row.on_site and row.department is None:
        # 返工 of a fix made on the spot: now it goes to the department its kind is routed to.
        sets["department"] = taxonomy.department(
            row.theme, row.category, settings.reports.departments
        )
    elif to == S.DUPLICATE:
        duplicate_of = _original(conn, m, row, scope)
    # The fix's `after` photo: before resolving, or (自行处置) before verifying the on-site fix.
    if to == S.RESOLVED or (to == S.VERIFIED and row.on_site):
        photos.check_resolvable(conn, report_id, row.theme, settings.photos)
    # Resolving records where; moving back to work clears it; verifying keeps it.
    keep_level = to not in (S.RESOLVED, S.IN_PROGRESS, S.DISPATCHED)
    new_level = row.resolution_level if keep_level else (m.level if to == S.RESOLVED else None)
    # The new stage starts at the transaction's now(), as status_changed_at does.
    due_at = deadlines.due_at_for(
        row.theme, row.category, to, row.now, settings.reports, settings.worktime
    )
    changes: dict[str, list] = {"status": [frm, to]}
    if new_level != row.resolution_level:
        changes["level"] = [row.resolution_level, new_level]
    for field in ("department", "handler_id"):
        if sets[field] != getattr(row, field):
            changes[field] = [getattr(row, field), sets[field]]
    if duplicate_of is not None:
        changes["duplicate_of"] = [None, str(duplicate_of)]
    step = record.event(
        report_id,
        "transition",
        from_status=frm,
        to_status=to,
        actor=who.username,
        actor_id=who.user_id,
        note=m.note,
        reason=m.reason,
        level=m.level if to == S.RESOLVED else None,
        department=sets["department"] if to == S.DISPATCHED else None,
        handler_id=sets["handler_id"] if to == S.DISPATCHED else None,
        duplicate_of=duplicate_of,
    )
    moved = conn.execute(
        _MOVE,
        {
            **step,
            **audit.entry(who, "report.transition", "report", report_id, changes),
            "to": to,
            "due_at": due_at,
            "u_level": new_level,
            "u_department": sets["department"],
            "u_handler_id": sets["handler_id"],
            "dup": duplicate_of,
            "returned": int(to == S.RETURNED),
            "reworked": int(to == S.IN_PROGRESS and frm == S.RESOLVED),
        },
    ).one()
    _announce(conn, frm, m, row, sets["department"], sets["handler_id"], who)
    return record.complete(conn, moved, scope)


def _announce(
    conn: Connection,
    frm: str,
    m: MoveRequest,
    row: Any,
    department: str | None,
    handler_id: int | None,
    who: Principal,
) -> None:
    """Tell whom a move concerns (notifications, and the webhook's outbox)."""
    to, rid = m.to, row.id
    handler = (handler_id,) if handler_id else ()
    if to == S.DISPATCHED:
        emit(conn, K.DISPATCHED, rid, department=department, data={"note": m.note}, who=who)
        if handler:
            emit(conn, K.ASSIGNED, rid, users=handler, data={"note": m.note}, who=who)
    elif to == S.RETURNED:
        emit(conn, K.RETURNED, rid, district_dispatchers=True, data={"reason": m.reason}, who=who)
    elif to == S.RESOLVED:
        # 核查: the grid's worker checks; without a grid, its district's dispatchers do.
        emit(conn, K.CHECK_TASK, rid, grid_workers=bool(row.grid_code),
             district_dispatchers=not row.grid_code, who=who)  # fmt: skip
        if row.reporter_id:
            emit(conn, K.RESOLVED, rid, users=(row.reporter_id,), who=who)
    elif to == S.IN_PROGRESS and frm == S.RESOLVED:  # 返工: back to who fixed it
        emit(conn, K.DISPATCHED, rid, department=department, users=handler,
             data={"rework": True, "reason": m.reason}, who=who)  # fmt: skip


def supervise(
    conn: Connection,
    report_id: uuid.UUID,
    note: str | None,
    on: bool,
    who: Principal,
    sensitive_themes: tuple[str, ...],
) -> dict:
    """Set (or lift) the 督办 flag of an open report as a dispatcher; return the report."""
    if who.role not in taxonomy.SUPERVISE_ROLES:
        raise Forbidden(
            f"督办 is set by {taxonomy.roles_text(taxonomy.SUPERVISE_ROLES)}; "
            f"you are logged in as {who.role or 'no role'}"
        )
    scope = report_scope(who, sensitive_themes)
    row = _locked(conn, report_id, scope, "r.status, r.supervised_at, r.department, r.handler_id")
    if on and row.status not in OPEN_STATUSES:
        raise Conflict(f"a {row.status} report is closed: there is nothing left to supervise")
    conn.execute(
        text(
            "UPDATE reports SET supervised_at = CASE WHEN :on THEN now() END, "
            "supervised_by = CASE WHEN :on THEN CAST(:by AS integer) END, "
            "supervision_note = CASE WHEN :on THEN CAST(:note AS text) END, updated_at = now() "
            "WHERE id = :id"
        ),
        {"on": on, "by": who.user_id, "note": note, "id": report_id},
    )
    add_event(
        conn,
        report_id,
        "supervised" if on else "supervision_lifted",
        actor=who.username,
        actor_id=who.user_id,
        note=note,
    )
    audit.record(
        conn,
        who,
        "report.supervise",
        "report",
        report_id,
        {"supervised": [row.supervised_at is not None, on]},
    )
    if on:
        handler = (row.handler_id,) if row.handler_id else ()
        emit(conn, K.SUPERVISED, report_id, department=row.department, users=handler,
             data={"note": note}, who=who)  # fmt: skip
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
