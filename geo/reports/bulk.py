"""Bulk report loading: COPY into a staging table, then assign and insert in set-based SQL.

Used by `riskgrid reports import` and by the demo. Rows are checked before they get here
(geo.reports.files); this module adds what needs the database: the service-area check and the
grid assignment, with the same rules as single intake. Re-loading the same ids stores nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geo.db.copy import copy_frame
from geo.db.privileges import refresh_statistics
from geo.grids.assignment import M_PER_DEG_MIN, assignment_ctes, snap_params, stage_points
from geo.reports import deadlines, taxonomy
from geo.settings import ReportSettings, WorkTimeSettings

# Columns of the staging table, in COPY order. Timestamps of later steps are optional: the
# demo and historical imports carry whole timelines.
STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("row_no", "integer"),
    ("lon", "float8"),
    ("lat", "float8"),
    ("source_crs", "text"),
    ("source_lon", "float8"),
    ("source_lat", "float8"),
    ("accuracy_m", "float8"),
    ("theme", "text"),
    ("category", "text"),
    ("severity", "integer"),
    ("status", "text"),
    ("description", "text"),
    ("campaign_code", "text"),
    ("reporter", "text"),
    ("department", "text"),
    ("resolution_level", "text"),
    ("reported_at", "timestamptz"),
    ("accepted_at", "timestamptz"),
    ("dispatched_at", "timestamptz"),
    ("returned_at", "timestamptz"),
    ("redispatched_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("reworked_at", "timestamptz"),
    ("reresolved_at", "timestamptz"),
    ("verified_at", "timestamptz"),
    ("closed_at", "timestamptz"),
    ("due_at", "timestamptz"),
    ("closed_reason", "text"),
    ("returned_by", "text"),
    ("return_reason", "text"),
    ("rework_reason", "text"),
    ("supervised_at", "timestamptz"),
    ("supervision_note", "text"),
)
# The steps a timeline may carry, in the loop's order: (column, from, to). A step is taken
# when its column is set; a history without `accepted_at` goes reported → dispatched as
# before the loop had 立案, and gains nothing invented. At most one return (回退, then
# re-dispatched) and one rework (返工, then resolved again) per report.
TIMELINE: tuple[tuple[str, str, str], ...] = (
    ("accepted_at", "reported", "accepted"),
    ("dispatched_at", "accepted", "dispatched"),
    ("returned_at", "dispatched", "returned"),
    ("redispatched_at", "returned", "dispatched"),
    ("started_at", "dispatched", "in_progress"),
    ("resolved_at", "in_progress", "resolved"),
    ("reworked_at", "resolved", "in_progress"),
    ("reresolved_at", "in_progress", "resolved"),
    ("verified_at", "resolved", "verified"),
)
# Columns whose presence in any row makes the load write history events.
_HISTORY = (*(col for col, _, _ in TIMELINE), "closed_at", "supervised_at")


@dataclass
class BulkResult:
    """What a bulk load did, with one line per refused row."""

    received: int
    inserted: int
    existing: int
    refused: list[tuple[int, str]] = field(default_factory=list)
    by_method: dict[str, int] = field(default_factory=dict)


def prepare(frame: pd.DataFrame, rules: ReportSettings, worktime: WorkTimeSettings) -> pd.DataFrame:
    """Return `frame` with every staging column: department, timeline and deadline filled in."""
    out = frame.copy()
    for name, _ in STAGE_COLUMNS:
        if name not in out:
            out[name] = None
    out["row_no"] = out["row_no"].fillna(pd.Series(np.arange(1, len(out) + 1), index=out.index))
    out["status"] = out["status"].fillna("reported")
    out["severity"] = out["severity"].fillna(2)
    out["source_crs"] = out["source_crs"].fillna("wgs84")
    pairs = list(zip(out["theme"], out["category"], strict=True))
    # Look the taxonomy up once per (theme, category), not once per row.
    depts = {p: taxonomy.department(*p, rules.departments) for p in set(pairs)}
    limits = {p: deadlines.limits_for(*p, rules) for p in set(pairs)}
    out["department"] = [depts[p] for p in pairs]
    # The deadline of an open report runs from when it entered its current status: its
    # timeline's last step.
    steps = [c for c, _, _ in TIMELINE if out[c].notna().any()]
    entered = pd.to_datetime(out["reported_at"], utc=True)
    if steps:
        last = pd.concat([pd.to_datetime(out[c], utc=True) for c in steps], axis=1).max(axis=1)
        entered = last.where(last.notna(), entered)
    cal = deadlines.calendar(worktime)
    due = [
        None
        if (limit := limits[p].get(st)) is None or pd.isna(at)
        else deadlines.due_at(at.to_pydatetime(warn=False), limit, cal)
        for p, st, at in zip(pairs, out["status"], entered, strict=True)
    ]
    out["due_at"] = pd.to_datetime(pd.Series(due, index=out.index, dtype=object), utc=True)
    return out


def _copy(conn: Connection, frame: pd.DataFrame, progress: Callable[[int], None] | None) -> None:
    ddl = ", ".join(f"{n} {t}" for n, t in STAGE_COLUMNS)
    conn.execute(text(f"CREATE TEMP TABLE stage_reports ({ddl}) ON COMMIT DROP"))
    names = [n for n, _ in STAGE_COLUMNS]
    # Columns that are empty throughout (timelines, for most imports) are left to default NULL.
    names = [n for n in names if frame[n].notna().any()]
    values = frame[names].copy()
    for name in ("row_no", "severity"):
        if name in values:
            values[name] = pd.to_numeric(values[name]).astype("Int64")
    # Timestamps travel as ISO 8601 text formatted by numpy in C: pandas formats dates in
    # Python (3.4 s for 219,000 rows against 0.1 s).
    for name in (n for n, t in STAGE_COLUMNS if t == "timestamptz" and n in names):
        ts = pd.to_datetime(values[name], utc=True)
        iso = np.datetime_as_string(
            ts.dt.tz_convert(None).to_numpy("datetime64[us]"), unit="us", timezone="UTC"
        )
        values[name] = pd.Series(iso, index=values.index, dtype=object).where(ts.notna(), None)
    copy_frame(conn, "stage_reports", values, names, progress)
    stage_points(conn, "stage_reports", "stage_points")


_WORK_MEM = "256MB"
# A load of this many reports or more refreshes the planner's statistics of what it wrote.
ANALYZE_AFTER = 1000
_STEPS = ", ".join(f"s.{col}" for col, _, _ in TIMELINE)
_LOAD_SQL = f"""
    WITH {assignment_ctes("stage_points", grids_outer=True)},
    far AS (
      SELECT a.id FROM assigned a JOIN stage_points p ON p.id = a.id
      WHERE a.method = 'unassigned' AND NOT EXISTS (
        SELECT 1 FROM grids g
        WHERE ST_DWithin(g.geom, p.geom, :margin_deg)
          AND ST_DWithin(g.geom::geography, p.geom::geography, :margin_m))
    ),
    placed AS (
      SELECT a.*, COALESCE(a.district_code, (
        SELECT d.code FROM areas d WHERE d.level = 'district' AND ST_Covers(d.geom, p.geom)
        ORDER BY d.code LIMIT 1)) AS district
      FROM assigned a JOIN stage_points p ON p.id = a.id
      WHERE NOT EXISTS (SELECT 1 FROM far WHERE far.id = a.id)
    ),
    ins AS (
      INSERT INTO reports (
        id, theme, category, severity, status, description, geom, source_crs, source_lon,
        source_lat, accuracy_m, grid_code, district_code, assignment_method,
        assignment_distance_m, department, resolution_level, campaign_code, reporter,
        reported_at, status_changed_at, due_at, return_count, rework_count, supervised_at,
        supervision_note, created_at, updated_at)
      SELECT s.id, s.theme, s.category, s.severity, s.status, s.description, p.geom,
             s.source_crs, s.source_lon, s.source_lat, s.accuracy_m, pl.grid_code, pl.district,
             pl.method, pl.distance_m, s.department, s.resolution_level, s.campaign_code,
             s.reporter, s.reported_at,
             GREATEST(s.reported_at, {_STEPS}, s.closed_at),
             s.due_at, (s.returned_at IS NOT NULL)::int, (s.reworked_at IS NOT NULL)::int,
             s.supervised_at, s.supervision_note, now(), now()
      FROM stage_reports s JOIN stage_points p ON p.id = s.id JOIN placed pl ON pl.id = s.id
      ON CONFLICT (id) DO NOTHING
      RETURNING id, grid_code, assignment_method
    ){{events}}
    SELECT (SELECT count(*) FROM ins) AS inserted,
           (SELECT json_object_agg(m, n) FROM (SELECT assignment_method AS m, count(*) AS n
                                              FROM ins GROUP BY 1) x) AS by_method,
           (SELECT array_agg(s.row_no ORDER BY s.row_no) FROM far JOIN stage_reports s
              ON s.id = far.id) AS far_rows
"""
# History of imported timelines. A data-modifying CTE runs though nothing reads it; left out
# when no row has a timeline (0.6 s of 219,000 rows' load spent finding nothing). A step's
# actor: the department for its moves (take up, return, resolve), the reporter (the grid's
# worker) for the check (核查, 返工); the command centre's moves name nobody, as a file does not.
_EVENTS_SQL = """,
    ev AS (
      INSERT INTO report_events (report_id, kind, from_status, to_status, to_grid, actor, note,
                                 level, reason, department, at)
      SELECT s.id, e.kind, e.from_status, e.to_status, e.to_grid, e.actor, e.note, e.level,
             e.reason, e.department, e.at
      FROM ins JOIN stage_reports s ON s.id = ins.id
      CROSS JOIN LATERAL (VALUES
        ('transition', 'reported', 'accepted', NULL, NULL, NULL, NULL, NULL, NULL,
         s.accepted_at),
        ('transition', CASE WHEN s.accepted_at IS NULL THEN 'reported' ELSE 'accepted' END,
         'dispatched', NULL, NULL, NULL, NULL, COALESCE(s.returned_by, s.department), NULL,
         s.dispatched_at),
        ('transition', 'dispatched', 'returned', NULL, NULL, NULL, s.return_reason, NULL,
         s.returned_by, s.returned_at),
        ('transition', 'returned', 'dispatched', NULL, NULL, NULL, NULL, s.department, NULL,
         s.redispatched_at),
        ('transition', 'dispatched', 'in_progress', NULL, NULL, NULL, NULL, NULL, s.department,
         s.started_at),
        ('transition', 'in_progress', 'resolved', NULL, NULL, s.resolution_level, NULL, NULL,
         s.department, s.resolved_at),
        ('transition', 'resolved', 'in_progress', NULL, NULL, NULL, s.rework_reason, NULL,
         s.reporter, s.reworked_at),
        ('transition', 'in_progress', 'resolved', NULL, NULL, s.resolution_level, NULL, NULL,
         s.department, s.reresolved_at),
        ('transition', 'resolved', 'verified', NULL, NULL, NULL, NULL, NULL, s.reporter,
         s.verified_at),
        ('transition', 'reported', s.status, NULL, 'closed', NULL, s.closed_reason, NULL, NULL,
         CASE WHEN s.status IN ('rejected', 'duplicate') THEN s.closed_at END),
        ('supervised', NULL, NULL, NULL, s.supervision_note, NULL, NULL, NULL, NULL,
         s.supervised_at)
      ) AS e(kind, from_status, to_status, to_grid, note, level, reason, department, actor, at)
      WHERE e.at IS NOT NULL
    )"""


def load(
    conn: Connection,
    frame: pd.DataFrame,
    rules: ReportSettings,
    progress: Callable[[int], None] | None = None,
    worktime: WorkTimeSettings | None = None,
) -> BulkResult:
    """Assign and insert the rows of `frame` (WGS-84 lon/lat) in the caller's transaction."""
    if frame.empty:
        return BulkResult(received=0, inserted=0, existing=0)
    staged = prepare(frame, rules, worktime or WorkTimeSettings())
    _copy(conn, staged, progress)
    margin = rules.service_area_margin_m
    timeline = any(staged[col].notna().any() for col in _HISTORY)
    sql = _LOAD_SQL.replace("{events}", _EVENTS_SQL if timeline else "")
    params = {
        **snap_params(rules.snap_tolerance_m),
        "margin_m": margin,
        "margin_deg": margin / M_PER_DEG_MIN,
    }
    # Enough memory for this statement's sorts and hashes of a few hundred thousand rows,
    # which otherwise spill to disk (about 1 s of 219,000 rows' load); reset at commit.
    conn.execute(text("SELECT set_config('work_mem', :mem, true)"), {"mem": _WORK_MEM})
    row = conn.execute(text(sql), params).one()
    far_rows = list(row.far_rows or [])
    refused = [
        (
            int(n),
            f"more than {margin / 1000:g} km from every grid: outside the service "
            "area; check the position and its crs",
        )
        for n in far_rows
    ]
    inserted = int(row.inserted)
    if inserted >= ANALYZE_AFTER:
        # The planner's statistics, before autovacuum gets to them: a demo just loaded was
        # evaluated in 1.26 s with the empty tables' statistics and in 81 ms after ANALYZE.
        refresh_statistics(conn, "reports", "report_events", "report_loops")
    return BulkResult(
        received=len(frame),
        inserted=inserted,
        existing=len(frame) - inserted - len(far_rows),
        refused=refused,
        by_method={k: int(v) for k, v in (row.by_method or {}).items()},
    )


def content_ids(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Return a stable UUID (v5) per row from its content, for rows that come without an id.

    Loading the same rows again then stores nothing twice. Hashes joined column text from one
    pre-fed SHA-1 and sets the version bits for all rows at once: uuid.uuid5 per row cost 6 s
    for 219,000 rows, this 0.4 s.
    """
    n = len(frame)
    cols = [frame[c].tolist() if c in frame else [None] * n for c in columns]
    keys = (
        "|".join("" if v is None or v != v else str(v) for v in row)  # v != v: NaN
        for row in zip(*cols, strict=True)
    )
    prefix = hashlib.sha1(uuid.NAMESPACE_URL.bytes + b"riskgrid:report:")  # noqa: S324 - uuid5 is defined on SHA-1

    def digest(key: str) -> bytes:
        h = prefix.copy()
        h.update(key.encode())
        return h.digest()[:16]

    raw = np.frombuffer(b"".join(map(digest, keys)), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x50
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [
        "-".join(
            (
                h[i : i + 8],
                h[i + 8 : i + 12],
                h[i + 12 : i + 16],
                h[i + 16 : i + 20],
                h[i + 20 : i + 32],
            )
        )
        for i in range(0, 32 * n, 32)
    ]


def as_utc(values: pd.Series, naive_zone: str) -> pd.Series:
    """Return timestamps as UTC (datetime64), reading those without an offset in `naive_zone`."""
    text_ = values.astype("string")
    # An explicit offset or Z at the end: parse as is; anything else is local time.
    aware = text_.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).fillna(False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        out[aware] = pd.to_datetime(text_[aware], utc=True, format="ISO8601", errors="coerce")
    naive = ~aware & text_.notna()
    if naive.any():
        local = pd.to_datetime(text_[naive], format="ISO8601", errors="coerce")
        out[naive] = local.dt.tz_localize(naive_zone).dt.tz_convert("UTC")
    return out
