"""Reports coming in: who may send, checks, assignment, routing, campaign, duplicates,
idempotency, and the audit entry of each report stored."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from geo.coords import SourceCRS, to_wgs84
from geo.db.engine import driver_sql, fetch
from geo.errors import Conflict, Forbidden, InvalidInput
from geo.grids.assignment import M_PER_DEG_MIN, Assignment, assign_point
from geo.identity import audit
from geo.identity.principal import Principal
from geo.identity.scope import report_scope
from geo.reports import deadlines, taxonomy
from geo.reports.fragments import ACTIVE
from geo.reports.notify import emit
from geo.reports.record import UNHANDLED, add_event, answer_for, fetch_row
from geo.settings import ReportSettings, WorkTimeSettings
from geo.vocabulary import NotificationKind, ReportStatus, ResolutionLevel


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
    on_site: bool = False  # 自行处置: fixed on the spot by the worker who reports it
    # Who sent it: always the logged-in user (`create` sets both from the principal).
    reporter: str | None = None
    reporter_id: int | None = None

    def fingerprint(self) -> str:
        """Return a hash of the request and its sender, to tell a replay from a different
        report (the same id sent by someone else is a different report)."""
        data = asdict(self)
        del data["reporter"]  # the display name may change between a send and its replay
        data["id"] = str(self.id) if self.id else None
        data["reported_at"] = self.reported_at.isoformat() if self.reported_at else None
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def check_time(at: datetime | None, rules: ReportSettings, name: str = "reported_at") -> datetime:
    """Return when a phone says something happened (`name`, now when it says nothing);
    InvalidInput for a time in the future past the clock skew or older than the oldest kept."""
    now = datetime.now(UTC)
    if at is None:
        return now
    if at - now > timedelta(seconds=rules.clock_skew_s):
        raise InvalidInput(
            f"{name} {at.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')}); check the phone's clock"
        )
    if now - at > timedelta(days=rules.max_age_days):
        raise InvalidInput(f"{name} {at.isoformat()} is more than {rules.max_age_days:g} days ago")
    return at


def check_category(theme: str, category: str) -> None:
    """Raise InvalidInput unless `category` is one of `theme`'s (listing the valid codes)."""
    t = taxonomy.THEME_BY_CODE.get(theme)
    if t is None:
        raise InvalidInput(f"unknown theme {theme!r}; one of: {', '.join(taxonomy.THEME_BY_CODE)}")
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
      now() AS now,  -- the first stage's start, as status_changed_at's
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
      department, campaign_code, reporter, reporter_id, reported_at, status_changed_at, due_at,
      possible_duplicate_of, resolution_level, on_site)
    VALUES (
      :id, :idempotency_key, :request_hash, :theme, :category, :severity, :status, :description,
      ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :source_crs, :source_lon, :source_lat,
      :accuracy_m, :grid_code, :district_code, :assignment_method, :assignment_distance_m,
      :near_boundary_code, :near_boundary_m, :department, :campaign_code, :reporter,
      :reporter_id, :reported_at, now(), :due_at,
      :possible_duplicate_of, :resolution_level, :on_site)
    ON CONFLICT DO NOTHING
    RETURNING created_at, status_changed_at, due_at
    """
)


def check_sender(who: Principal) -> None:
    """Raise Forbidden unless `who`'s role sends reports."""
    if who.role not in taxonomy.SEND_ROLES:
        raise Forbidden(
            f"reports are sent by {taxonomy.roles_text(taxonomy.SEND_ROLES)}; "
            f"you are logged in as {who.role or 'no role'}"
        )


def _replay(
    conn: Connection,
    key: str | None,
    rid: uuid.UUID | None,
    fingerprint: str,
    reporter_id: int | None,
    masked_themes: tuple[str, ...],
) -> dict | None:
    """Return the stored report when this request was seen before; Conflict if it differs."""
    row = None
    if key is not None:
        row = fetch_row(conn, "r.idempotency_key = :k", {"k": key})
    if row is None and rid is not None:
        row = fetch_row(conn, "r.id = :id", {"id": rid})
    if row is None:
        return None
    if row.request_hash != fingerprint:
        what = (
            f"Idempotency-Key {key!r}"
            if key is not None and row.idempotency_key == key
            else (f"id {rid}")
        )
        # Someone else's report is not named: its id is not the sender's to know.
        which = f" ({row.id})" if row.reporter_id == reporter_id else ""
        raise Conflict(
            f"{what} was already used for a different report{which}; send a new key or id "
            "for a new report, or resend the identical report to get the stored one"
        )
    return answer_for(conn, row, masked_themes)


def create(
    conn: Connection,
    item: NewReport,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
    who: Principal,
    sensitive_themes: tuple[str, ...],
    idempotency_key: str | None = None,
) -> tuple[dict, bool]:
    """Store a report sent by `who` and return (report as they see it, created). A replay
    returns the stored one unchanged; Forbidden when `who`'s role does not send reports."""
    check_sender(who)
    if item.on_site and who.role not in taxonomy.ON_SITE_ROLES:
        raise Forbidden(
            "自行处置 (on_site) is for the grid worker who fixed it on the spot; "
            f"you are logged in as {who.role or 'no role'}"
        )
    item = replace(item, reporter=who.name or who.username, reporter_id=who.user_id)
    masked_themes = report_scope(who, sensitive_themes).masked_themes
    fingerprint = item.fingerprint()
    seen = _replay(conn, idempotency_key, item.id, fingerprint, item.reporter_id, masked_themes)
    if seen is not None:
        return seen, False
    row, started = _new_row(conn, item, rules)
    params = {
        **row,
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "due_at": deadlines.due_at_for(
            item.theme, item.category, row["status"], started, rules, worktime
        ),
    }
    inserted = fetch(conn, _INSERT, params)
    if not inserted:
        # Someone stored the same id or key between our look and our insert.
        seen = _replay(conn, idempotency_key, item.id, fingerprint, item.reporter_id, masked_themes)
        if seen is None:  # pragma: no cover - the conflicting row cannot vanish in between
            raise Conflict("the report id or key is taken; retry")
        return seen, False
    changes = {
        "status": [None, row["status"]],
        "grid": [None, row["grid_code"]],
        "category": [None, row["category"]],
    }
    audit.record(conn, who, "report.create", "report", row["id"], changes)
    if item.on_site:
        # Fixed on the spot: the loop's resolve step, and a 核查 task for the desk.
        add_event(conn, row["id"], "transition", from_status=ReportStatus.REPORTED,
                  to_status=ReportStatus.RESOLVED, level=ResolutionLevel.GRID,
                  note="自行处置", actor=who.username, actor_id=who.user_id)  # fmt: skip
        emit(conn, NotificationKind.CHECK_TASK, row["id"], district_dispatchers=True, who=who)
    # The answer is built from the row just stored: no second read of it.
    return answer_for(conn, {**row, **inserted[0], **UNHANDLED}, masked_themes, new=True), True


def _new_row(
    conn: Connection, item: NewReport, rules: ReportSettings
) -> tuple[dict[str, Any], datetime]:
    """Return the report's row as stored and answered (the columns of `_REPORT_SELECT`), and
    the transaction's now() (its first stage starts then)."""
    check_category(item.theme, item.category)
    reported_at = check_time(item.reported_at, rules)
    lon_a, lat_a = to_wgs84(item.lon, item.lat, item.crs)
    lon, lat = float(lon_a), float(lat_a)
    a: Assignment = assign_point(
        conn, lon, lat, item.accuracy_m, rules.snap_tolerance_m, rules.service_area_margin_m
    )
    campaign, duplicate, now = _campaign_and_duplicate(conn, item, reported_at, lon, lat, rules)
    converted = item.crs != SourceCRS.WGS84
    row = {
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
        "reporter_id": item.reporter_id,
        "reported_at": reported_at,
        "status": ReportStatus.RESOLVED if item.on_site else ReportStatus.REPORTED,
        # A fix made on the spot was never sent to a department: none sees it (a rework sends
        # it to the routed one, loop.transition).
        "department": None
        if item.on_site
        else taxonomy.department(item.theme, item.category, rules.departments),
        "resolution_level": ResolutionLevel.GRID if item.on_site else None,
        "on_site": item.on_site,
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
    return row, now


def _campaign_and_duplicate(
    conn: Connection,
    item: NewReport,
    reported_at: datetime,
    lon: float,
    lat: float,
    rules: ReportSettings,
) -> tuple[str | None, uuid.UUID | None, datetime]:
    """Return the report's campaign (named, else the running one of its theme), the open
    report of the same kind it likely duplicates, and the transaction's now()."""
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
        raise InvalidInput(f"unknown campaign {item.campaign!r} among the stored campaigns")
    campaign = item.campaign if item.campaign is not None else ctx["campaign"]
    return campaign, ctx["duplicate"], ctx["now"]
