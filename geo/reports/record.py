"""One report as stored and as answered: the row, its JSON shape, its history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import NotFound
from geo.identity.scope import ReportScope, scope_condition
from geo.reports import photos
from geo.reports.fragments import OVERDUE, STAND_IN

_COLUMNS = f"""r.id, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, r.source_crs, r.source_lon,
       r.source_lat, r.accuracy_m, r.theme, r.category, r.severity, r.description, r.campaign_code,
       r.reporter, r.reporter_id, r.reported_at, r.created_at, r.updated_at, r.status,
       r.status_changed_at, r.due_at, r.department, r.resolution_level, r.grid_code,
       g.name AS grid_name, g.kind AS grid_kind, r.district_code, r.assignment_method,
       r.assignment_distance_m, r.near_boundary_code, nb.name AS near_boundary_name,
       r.near_boundary_m, r.possible_duplicate_of, r.request_hash, r.idempotency_key,
       {OVERDUE} AS overdue, r.duplicate_of, h.username AS handler, r.supervised_at,
       sv.username AS supervised_by, r.supervision_note, r.escalated_at, r.rework_count,
       r.return_count, r.on_site"""


def report_select(source: str = "reports") -> str:
    """Return the SELECT of a report's answer row from `source` as `r`: the table, or a CTE
    that updated it (`UPDATE … RETURNING *`), so that a move answers from the row it wrote."""
    return f"""SELECT {_COLUMNS}
FROM {source} r
LEFT JOIN grids g ON g.code = r.grid_code
LEFT JOIN grids nb ON nb.code = r.near_boundary_code
LEFT JOIN users h ON h.id = r.handler_id
LEFT JOIN users sv ON sv.id = r.supervised_by
"""


_REPORT_SELECT = report_select()


# The case-handling columns of a report just received: nothing handled yet.
UNHANDLED: dict[str, Any] = {
    "overdue": False,
    "duplicate_of": None,
    "handler": None,
    "supervised_at": None,
    "supervised_by": None,
    "supervision_note": None,
    "escalated_at": None,
    "rework_count": 0,
    "return_count": 0,
}


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
        "duplicate_of": str(m["duplicate_of"]) if m["duplicate_of"] else None,
        "handler": m["handler"],
        "supervision": {
            "at": _iso(m["supervised_at"]),
            "by": m["supervised_by"],
            "note": m["supervision_note"],
        }
        if m["supervised_at"]
        else None,
        "escalated_at": _iso(m["escalated_at"]),
        "on_site": m["on_site"],
        "rework_count": m["rework_count"],
        "return_count": m["return_count"],
        "masked": False,
    }


# Where a masked report is shown: the stand-in point lists and maps use too.
_STAND_IN_POINT = text(
    f"SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT {STAND_IN} AS p FROM reports r "
    "WHERE r.id = :id) AS x"
)


def masked(conn: Connection, answer: dict) -> dict:
    """Return a report's answer as shown to someone who sees its theme masked: no description,
    no reporter, and the stand-in point of its grid (else district, else nearest grid)."""
    pt = conn.execute(_STAND_IN_POINT, {"id": answer["id"]}).one()
    return {
        **answer,
        "lon": None if pt.lon is None else round(pt.lon, 7),
        "lat": None if pt.lat is None else round(pt.lat, 7),
        "source": {"crs": answer["source"]["crs"], "lon": None, "lat": None},
        "description": None,
        "reporter": None,
        # Distances to the grid and to the next boundary would place the point again.
        "assignment": {**answer["assignment"], "distance_m": None, "near_boundary": None},
        # Free text like the description.
        "supervision": {**answer["supervision"], "note": None} if answer["supervision"] else None,
        "masked": True,
    }


def answer_for(
    conn: Connection, row: Any, masked_themes: tuple[str, ...], new: bool = False
) -> dict:
    """Return the JSON shape of a stored report as this reader may see it (masked or not),
    with its photos (none for a report just stored, and none shown of a masked one: they
    would show where it is)."""
    out = report_answer(row)
    if out["theme"] in masked_themes:
        return {**masked(conn, out), "photos": []}
    out["photos"] = [] if new else photos.for_reports(conn, [out["id"]])[out["id"]]
    return out


def fetch_row(conn: Connection, where: str, params: dict) -> Any:
    """Return the one report row matching `where` (on `reports r`), or None."""
    return conn.execute(text(f"{_REPORT_SELECT} WHERE {where}"), params).one_or_none()


def get(conn: Connection, report_id: uuid.UUID, scope: ReportScope) -> dict:
    """Return one report within `scope` with its history, oldest step first; NotFound when
    there is no such report or it lies outside the scope (someone else's report)."""
    scoped, params = scope_condition(scope)
    row = fetch_row(conn, f"r.id = :id AND {scoped}", {**params, "id": report_id})
    if row is None:
        raise NotFound(f"no report with id {report_id}")
    return complete(conn, row, scope)


# A report's photos and its history in one round trip (each as JSON rows, oldest first).
_PHOTOS_AND_HISTORY = text(
    f"""
    SELECT (SELECT COALESCE(json_agg(p ORDER BY p.created_at, p.id), '[]')
            FROM (SELECT {photos.COLUMNS} FROM report_photos p WHERE p.report_id = :id) p)
             AS photos,
           (SELECT COALESCE(json_agg(e ORDER BY e.at, e.id), '[]')
            FROM (SELECT e.id, e.kind, e.from_status, e.to_status, e.from_grid, e.to_grid,
                         e.actor, e.note, e.reason, e.level, e.department,
                         h.username AS handler, e.duplicate_of, e.at
                  FROM report_events e LEFT JOIN users h ON h.id = e.handler_id
                  WHERE e.report_id = :id) e) AS history
    """
)


def complete(conn: Connection, row: Any, scope: ReportScope) -> dict:
    """Return the answer of a report row read within `scope`: masked or not, with its photos
    and its history."""
    out = report_answer(row)
    is_masked = out["theme"] in scope.masked_themes
    if is_masked:
        out = masked(conn, out)
    both = conn.execute(_PHOTOS_AND_HISTORY, {"id": row.id}).one()
    # A masked report's photos would show where it is.
    shown = [] if is_masked else [photos.answer_from_json(p) for p in both.photos]
    # A reused photo names the other report only to a reader who sees that one unmasked.
    out["photos"] = photos.visible_reuse(conn, shown, scope)
    # A masked report's notes are free text like its description, and its actors would name
    # the reporter (the grid's worker often both reports and verifies): both are left out.
    hidden = {"note": None, "reason": None, "actor": None, "handler": None}
    steps = [
        {
            **{k: v for k, v in e.items() if k != "id"},
            "at": _iso(datetime.fromisoformat(e["at"])),
            **(hidden if is_masked else {}),
        }
        for e in both.history
    ]
    # Receipt is not stored as an event (the row itself records it); it opens the history.
    first_grid = next((e["from_grid"] for e in steps if e["kind"] == "reassigned"), row.grid_code)
    received = {
        "kind": "reported",
        "from_status": None,
        "to_status": "reported",
        "from_grid": None,
        "to_grid": first_grid,
        "actor": out["reporter"],
        "note": "received",
        "reason": None,
        "level": None,
        "department": None,
        "handler": None,
        "duplicate_of": None,
        "at": _iso(row.reported_at),
    }
    out["history"] = [received, *steps]
    return out


EVENT_SQL = """
    INSERT INTO report_events (report_id, kind, from_status, to_status, from_grid, to_grid,
                               actor, actor_id, note, reason, level, department, handler_id,
                               duplicate_of, at)
    VALUES (:id, :kind, :from_status, :to_status, :from_grid, :to_grid, :actor, :actor_id,
            :note, :reason, :level, :department, :handler_id, :duplicate_of, COALESCE(:at, now()))
    """
_EVENT = text(EVENT_SQL)


def add_event(conn: Connection, report_id: uuid.UUID, kind: str, **values: Any) -> None:
    """Append one step to a report's history (a transition or a reassignment)."""
    conn.execute(_EVENT, event(report_id, kind, **values))


def event(report_id: uuid.UUID, kind: str, **values: Any) -> dict[str, Any]:
    """Return the binds of EVENT_SQL for one step (see `add_event`)."""
    params = {
        "from_status": None,
        "to_status": None,
        "from_grid": None,
        "to_grid": None,
        "actor": None,
        "actor_id": None,
        "note": None,
        "reason": None,
        "level": None,
        "department": None,
        "handler_id": None,
        "duplicate_of": None,
        "at": None,
    }
    return {**params, **values, "id": report_id, "kind": kind}
