"""Reports: intake (assignment, routing, duplicates, idempotency), the closed loop, reassignment."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.coords import SourceCRS, to_wgs84
from geo.db.engine import driver_sql, fetch
from geo.errors import Conflict, InvalidInput, NotFound
from geo.grids.assignment import (
    M_PER_DEG_MIN,
    Assignment,
    assign_point,
    assignment_ctes,
    snap_params,
)
from geo.reports import taxonomy
from geo.reports.fragments import ACTIVE, OVERDUE
from geo.settings import ReportSettings
from geo.vocabulary import (
    OPEN_STATUSES,
    AssignmentMethod,
    ReportStatus,
    sql_list,
)

OPEN = sql_list(OPEN_STATUSES)
MANUAL = AssignmentMethod.MANUAL.value
S = ReportStatus


@dataclass(frozen=True)
class NewReport:
    """A report as a grid worker sent it, already checked for shape and ranges."""

    lon: float
    lat: float
    theme: str
    category: str
    crs: str = SourceCRS.WGS84.value
    id: uuid.UUID | None = None
    accuracy_m: float | None = None
    severity: int = 2
    description: str | None = None
    campaign: str | None = None
    reported_at: datetime | None = None
    reporter: str | None = None

    def fingerprint(self) -> str:
        """Return a hash of the request, to tell a replay from a different report."""
        data = asdict(self)
        data["id"] = str(self.id) if self.id else None
        data["reported_at"] = self.reported_at.isoformat() if self.reported_at else None
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


_REPORT_SELECT = f"""
SELECT r.id, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, r.source_crs, r.source_lon, r.source_lat,
       r.accuracy_m, r.theme, r.category, r.severity, r.description, r.campaign_code,
       r.reporter, r.reported_at, r.created_at, r.updated_at, r.status, r.status_changed_at,
       r.due_at, r.department, r.resolution_level, r.grid_code, g.name AS grid_name,
       g.kind AS grid_kind, r.district_code, r.assignment_method, r.assignment_distance_m,
       r.near_boundary_code, nb.name AS near_boundary_name, r.near_boundary_m,
       r.possible_duplicate_of, r.request_hash, r.idempotency_key,
       {OVERDUE} AS overdue
FROM reports r
LEFT JOIN grids g ON g.code = r.grid_code
LEFT JOIN grids nb ON nb.code = r.near_boundary_code
"""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def report_answer(row: Any) -> dict:
    """Return the JSON shape of a stored report (as POST and GET answer it)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    grid = (
        {"code": m["grid_code"], "name": m["grid_name"], "kind": m["grid_kind"]}
        if m["grid_code"]
        else None
    )
    near = (
        {
            "code": m["near_boundary_code"],
            "name": m["near_boundary_name"],
            "distance_m": round(m["near_boundary_m"], 1),
        }
        if m["near_boundary_code"]
        else None
    )
    dist = m["assignment_distance_m"]
    return {
        "id": str(m["id"]),
        "lon": round(m["lon"], 7),
        "lat": round(m["lat"], 7),
        "source": {"crs": m["source_crs"], "lon": m["source_lon"], "lat": m["source_lat"]},
        "accuracy_m": m["accuracy_m"],
        "theme": m["theme"],
        "category": m["category"],
        "severity": m["severity"],
        "description": m["description"],
        "campaign": m["campaign_code"],
        "reporter": m["reporter"],
        "reported_at": _iso(m["reported_at"]),
        "created_at": _iso(m["created_at"]),
        "grid": grid,
        "district": m["district_code"],
        "assignment": {
            "method": m["assignment_method"],
            "distance_m": None if dist is None else round(dist, 1),
            "near_boundary": near,
        },
        "status": m["status"],
        "status_changed_at": _iso(m["status_changed_at"]),
        "due_at": _iso(m["due_at"]),
        "overdue": bool(m["overdue"]),
        "department": m["department"],
        "resolution_level": m["resolution_level"],
        "possible_duplicate_of": str(m["possible_duplicate_of"])
        if m["possible_duplicate_of"]
        else None,
    }


def _fetch(conn: Connection, where: str, params: dict) -> Any:
    return conn.execute(text(f"{_REPORT_SELECT} WHERE {where}"), params).one_or_none()


def _check_time(reported_at: datetime | None, rules: ReportSettings) -> datetime:
    now = datetime.now(UTC)
    if reported_at is None:
        return now
    if reported_at - now > timedelta(seconds=rules.clock_skew_s):
        raise InvalidInput(
            f"reported_at {reported_at.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')}); check the phone's clock"
        )
    if now - reported_at > timedelta(days=rules.max_age_days):
        raise InvalidInput(
            f"reported_at {reported_at.isoformat()} is more than {rules.max_age_days:g} days ago"
        )
    return reported_at


def check_category(theme: str, category: str) -> None:
    """Raise InvalidInput unless `category` is one of `theme`'s (listing the valid codes)."""
    t = taxonomy.THEME_BY_CODE.get(theme)
    if t is None:
        raise InvalidInput(
            f"unknown theme {theme!r}; one of: {', '.join(taxonomy.THEME_BY_CODE)} "
            "(GET /api/v1/themes)"
        )
    if taxonomy.category(theme, category) is None:
        codes = ", ".join(c.code for c in t.categories)
        raise InvalidInput(f"unknown category {category!r} for theme {theme!r}; one of: {codes}")


_CONTEXT = driver_sql(
    f"""
    WITH near AS MATERIALIZED (
      -- Reports within a few dozen metres: the spatial index first, whatever the planner
      -- guesses (a busy theme in a campaign week has thousands of recent reports).
      SELECT r.id, r.theme, r.category, r.status, r.reported_at, r.geom FROM reports r
      WHERE r.geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :deg)
    )
    SELECT
      (SELECT code FROM campaigns WHERE code = :named) AS named,
      -- A report of a campaign's theme made during it belongs to it.
      (SELECT code FROM campaigns WHERE theme = :theme AND :day BETWEEN starts_on AND ends_on
       ORDER BY starts_on DESC, code LIMIT 1) AS campaign,
      -- An open report of the same kind close by in space and time: a likely duplicate.
      (SELECT r.id FROM near r
       WHERE r.theme = :theme AND r.category = :category
         AND {ACTIVE}
         AND r.reported_at BETWEEN :at - make_interval(secs => :window_s)
                               AND :at + make_interval(secs => :window_s)
         AND ST_DWithin(r.geom::geography,
                        ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :radius)
       ORDER BY ST_Distance(r.geom::geography,
                            ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography), r.reported_at
       LIMIT 1) AS duplicate
    """
)

_INSERT = driver_sql(
    """
    INSERT INTO reports (
      id, idempotency_key, request_hash, theme, category, severity, status, description, geom,
      source_crs, source_lon, source_lat, accuracy_m, grid_code, district_code,
      assignment_method, assignment_distance_m, near_boundary_code, near_boundary_m,
      department, campaign_code, reporter, reported_at, status_changed_at, due_at,
      possible_duplicate_of)
    VALUES (
      :id, :idempotency_key, :request_hash, :theme, :category, :severity, :status, :description,
      ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :source_crs, :source_lon, :source_lat,
      :accuracy_m, :grid_code, :district_code, :assignment_method, :assignment_distance_m,
      :near_boundary_code, :near_boundary_m, :department, :campaign_code, :reporter,
      :reported_at, now(), now() + make_interval(secs => :due_s), :possible_duplicate_of)
    ON CONFLICT DO NOTHING
    RETURNING created_at, status_changed_at, due_at
    """
)

_EVENT = text(
    """
    INSERT INTO report_events (report_id, kind, from_status, to_status, from_grid, to_grid,
                               actor, note, level, at)
    VALUES (:id, :kind, :from_status, :to_status, :from_grid, :to_grid, :actor, :note, :level,
            COALESCE(:at, now()))
    """
)


def _event(conn: Connection, report_id: uuid.UUID, kind: str, **values: Any) -> None:
    params = {
        "from_status": None,
        "to_status": None,
        "from_grid": None,
        "to_grid": None,
        "actor": None,
        "note": None,
        "level": None,
        "at": None,
    }
    conn.execute(_EVENT, {**params, **values, "id": report_id, "kind": kind})


def _replay(
    conn: Connection, key: str | None, rid: uuid.UUID | None, fingerprint: str
) -> dict | None:
    """Return the stored report when this request was seen before; Conflict if it differs."""
    row = None
    if key is not None:
        row = _fetch(conn, "r.idempotency_key = :k", {"k": key})
    if row is None and rid is not None:
        row = _fetch(conn, "r.id = :id", {"id": rid})
    if row is None:
        return None
    if row.request_hash != fingerprint:
        what = (
            f"Idempotency-Key {key!r}"
            if key is not None and row.idempotency_key == key
            else (f"id {rid}")
        )
        raise Conflict(
            f"{what} was already used for a different report ({row.id}); send a new key or id "
            "for a new report, or the identical request to get the stored one"
        )
    return report_answer(row)


def create(
    conn: Connection, item: NewReport, rules: ReportSettings, idempotency_key: str | None = None
) -> tuple[dict, bool]:
    """Store a report and return (report, created). A replay returns the stored one unchanged."""
    fingerprint = item.fingerprint()
    seen = _replay(conn, idempotency_key, item.id, fingerprint)
    if seen is not None:
        return seen, False
    row = _new_row(conn, item, rules)
    hours = taxonomy.stage_hours(item.theme, item.category, rules.time_limits_h)
    params = {
        **row,
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "due_s": hours[ReportStatus.REPORTED] * 3600,
    }
    inserted = fetch(conn, _INSERT, params)
    if not inserted:
        # Someone stored the same id or key between our look and our insert.
        seen = _replay(conn, idempotency_key, item.id, fingerprint)
        if seen is None:  # pragma: no cover - the conflicting row cannot vanish in between
            raise Conflict("the report id or key is taken; retry")
        return seen, False
    # The answer is built from the row just stored: no second read of it.
    return report_answer({**row, **inserted[0], "overdue": False}), True


def _new_row(conn: Connection, item: NewReport, rules: ReportSettings) -> dict[str, Any]:
    """Return the report's row as stored and answered (the columns of `_REPORT_SELECT`)."""
    check_category(item.theme, item.category)
    reported_at = _check_time(item.reported_at, rules)
    lon_a, lat_a = to_wgs84(item.lon, item.lat, item.crs)
    lon, lat = float(lon_a), float(lat_a)
    a: Assignment = assign_point(
        conn, lon, lat, item.accuracy_m, rules.snap_tolerance_m, rules.service_area_margin_m
    )
    campaign, duplicate = _campaign_and_duplicate(conn, item, reported_at, lon, lat, rules)
    converted = item.crs != SourceCRS.WGS84
    return {
        "id": item.id or uuid.uuid4(),
        "lon": lon,
        "lat": lat,
        "source_crs": item.crs,
        "source_lon": item.lon if converted else None,
        "source_lat": item.lat if converted else None,
        "accuracy_m": item.accuracy_m,
        "theme": item.theme,
        "category": item.category,
        "severity": item.severity,
        "description": item.description,
        "campaign_code": campaign,
        "reporter": item.reporter,
        "reported_at": reported_at,
        "status": ReportStatus.REPORTED,
        "department": taxonomy.department(item.theme, item.category, rules.departments),
        "resolution_level": None,
        "grid_code": a.grid_code,
        "grid_name": a.grid_name,
        "grid_kind": a.grid_kind,
        "district_code": a.district_code,
        "assignment_method": a.method,
        "assignment_distance_m": a.distance_m,
        "near_boundary_code": a.near_code,
        "near_boundary_name": a.near_name,
        "near_boundary_m": a.near_m,
        "possible_duplicate_of": duplicate,
    }


def _campaign_and_duplicate(
    conn: Connection,
    item: NewReport,
    reported_at: datetime,
    lon: float,
    lat: float,
    rules: ReportSettings,
) -> tuple[str | None, uuid.UUID | None]:
    """Return the report's campaign (named, else the running one of its theme) and the open
    report of the same kind it likely duplicates."""
    ctx = fetch(
        conn,
        _CONTEXT,
        {
            "theme": item.theme,
            "category": item.category,
            "named": item.campaign,
            "day": reported_at.astimezone(UTC).date(),
            "at": reported_at,
            "window_s": rules.duplicate_window_h * 3600,
            "lon": lon,
            "lat": lat,
            "deg": max(rules.duplicate_radius_m, 1.0) / M_PER_DEG_MIN,
            "radius": rules.duplicate_radius_m,
        },
    )[0]
    if item.campaign is not None and ctx["named"] is None:
        raise InvalidInput(f"unknown campaign {item.campaign!r}; GET /api/v1/campaigns lists them")
    campaign = item.campaign if item.campaign is not None else ctx["campaign"]
    return campaign, ctx["duplicate"]


def get(conn: Connection, report_id: uuid.UUID) -> dict:
    """Return one report with its history, oldest step first."""
    row = _fetch(conn, "r.id = :id", {"id": report_id})
    if row is None:
        raise NotFound(f"no report with id {report_id}")
    out = report_answer(row)
    events = conn.execute(
        text(
            "SELECT kind, from_status, to_status, from_grid, to_grid, actor, note, level, at "
            "FROM report_events WHERE report_id = :id ORDER BY at, id"
        ),
        {"id": report_id},
    ).mappings()
    steps = [{**e, "at": _iso(e["at"])} for e in events]
    # Receipt is not stored as an event (the row itself records it); it opens the history.
    first_grid = next((e["from_grid"] for e in steps if e["kind"] == "reassigned"), row.grid_code)
    received = {
        "kind": "reported",
        "from_status": None,
        "to_status": "reported",
        "from_grid": None,
        "to_grid": first_grid,
        "actor": row.reporter,
        "note": "received",
        "level": None,
        "at": _iso(row.reported_at),
    }
    out["history"] = [received, *steps]
    return out


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
    _event(
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
        raise InvalidInput(f"no grid with code {grid_code!r}; GET /api/v1/grids lists them")
    conn.execute(
        text(
            "UPDATE reports SET grid_code = :g, district_code = :d, assignment_method = :manual,"
            " assignment_distance_m = NULL, near_boundary_code = NULL, near_boundary_m = NULL,"
            " updated_at = now() WHERE id = :id"
        ),
        {"g": grid.code, "d": grid.district_code, "id": report_id, "manual": MANUAL},
    )
    _event(
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
