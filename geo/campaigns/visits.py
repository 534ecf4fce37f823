"""Visits (走访排查): a grid worker at a place for a campaign, with the checklist's answers,
the outreach handed out and the hazards found, each stored as a report linked to the visit.

A visit is idempotent by its client id, like a report: the same visit sent again answers the
stored one, the same id with another body is a Conflict. Its grid follows the report rules
(geo.grids.assignment). A launched campaign takes visits; a paused or closed one still takes
those made while it ran (a phone's offline queue, sent later with its `visited_at`).

Who reads a visit (and its photos, geo.campaigns.visit_photos): as for reports, admins and
planners every one, dispatchers and coordinators their districts', a worker their own and
their grids'; a department the visits of the campaigns it is a partner in. A visit to a
household target is personal data on top of that: only to its visitor and to the roles that
see that household (geo.risk.households), each read audited.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from geo.campaigns import checklist, targets
from geo.campaigns.lifecycle import CampaignStatus
from geo.campaigns.store import get_row, list_campaigns
from geo.coords import SourceCRS, to_wgs84
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.grids.assignment import Assignment, assign_point
from geo.identity import audit
from geo.identity.principal import Principal
from geo.reports import intake, photos, taxonomy
from geo.reports.intake import NewReport
from geo.risk import households
from geo.settings import ReportSettings, WorkTimeSettings
from geo.vocabulary import Role

# Visits are made on site by grid workers; an admin may do anything. Dispatchers enter
# hotline reports, but a visit is someone at the door.
VISIT_ROLES: tuple[Role, ...] = (Role.WORKER, Role.ADMIN)
MAX_REPORTS = 20
# Where a visit's photo is served (api/routers/visits.py), filled from its columns.
PHOTO_URL = "/api/v1/visits/{visit_id}/photos/{id}"
PHOTO_COLUMNS = (
    "p.id, p.visit_id, p.content_type, p.bytes, p.width, p.height, p.taken_at, "
    "p.exif_distance_m, p.exif_time_diff_h, p.flags, p.reused_from, p.created_at"
)


@dataclass(frozen=True)
class NewVisit:
    """A visit as the phone sent it, checked for shape and ranges."""

    id: uuid.UUID
    campaign: str
    lon: float
    lat: float
    crs: str = SourceCRS.WGS84.value
    accuracy_m: float | None = None
    visited_at: datetime | None = None
    target: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    leaflets: int = 0
    stickers: int = 0
    reports: tuple[NewReport, ...] = ()

    def fingerprint(self, user_id: int | None) -> str:
        """Return a hash of the request and its sender, telling a replay from another visit."""
        data = {**asdict(self), "user_id": user_id}
        raw = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


_GRID_DISTRICTS = text(
    "SELECT DISTINCT district_code FROM grids "
    "WHERE code = ANY(:grids) AND district_code IS NOT NULL"
)


def campaigns_for(conn: Connection, who: Principal) -> list[dict]:
    """Return the launched campaigns `who` may record visits for, oldest first: for a grid
    worker those whose districts hold one of their grids, for an admin every one, for the
    other roles none."""
    if who.role not in VISIT_ROLES:
        return []
    launched = list_campaigns(conn, CampaignStatus.LAUNCHED.value)
    if who.role == Role.ADMIN:
        return launched
    mine = _districts_of(conn, who)
    return [c for c in launched if mine.intersection(c["districts"])]


def _districts_of(conn: Connection, who: Principal) -> set[str]:
    return set(conn.execute(_GRID_DISTRICTS, {"grids": list(who.grids)}).scalars())


def check_visitor(conn: Connection, who: Principal, c: dict) -> None:
    """Raise Forbidden unless `who` records visits for campaign `c`, as `campaigns_for` lists
    them: a grid worker for the campaigns of their grids' districts (an admin for any)."""
    if who.role != Role.WORKER:
        return
    mine = _districts_of(conn, who)
    if mine.intersection(c["districts"]):
        return
    raise Forbidden(
        f"campaign {c['code']} runs in districts {', '.join(c['districts'])}; your grids lie in "
        f"{', '.join(sorted(mine)) or 'no district'}: a grid worker records visits for the "
        "campaigns of their own districts"
    )


_SELECT = text(
    f"""
    SELECT v.id, v.campaign_code, ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat, v.source_crs,
           v.source_lon, v.source_lat, v.accuracy_m, v.visited_at, v.created_at, v.visitor,
           v.user_id, v.grid_code, g.name AS grid_name, g.kind AS grid_kind, v.district_code,
           v.assignment_method, v.assignment_distance_m, v.target_id, t.ref AS target_ref,
           v.answers, v.leaflets, v.stickers, v.request_hash,
           COALESCE((SELECT json_agg(json_build_object(
                       'id', r.id, 'theme', r.theme, 'category', r.category,
                       'status', r.status, 'grid', r.grid_code) ORDER BY r.reported_at, r.id)
                     FROM reports r WHERE r.visit_id = v.id), '[]') AS reports,
           COALESCE((SELECT json_agg(x ORDER BY x.created_at, x.id)
                     FROM (SELECT {PHOTO_COLUMNS} FROM visit_photos p
                           WHERE p.visit_id = v.id) x), '[]') AS photos
    FROM visits v
    LEFT JOIN grids g ON g.code = v.grid_code
    LEFT JOIN campaign_targets t ON t.id = v.target_id
    WHERE v.id = :id
    """
)

_INSERT = text(
    """
    INSERT INTO visits (id, campaign_code, user_id, visitor, geom, source_crs, source_lon,
                        source_lat, accuracy_m, grid_code, assignment_method,
                        assignment_distance_m, district_code, target_id, answers, leaflets,
                        stickers, visited_at, request_hash)
    VALUES (:id, :campaign, :user_id, :visitor, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
            :source_crs, :source_lon, :source_lat, :accuracy_m, :grid_code, :method,
            :distance_m, :district_code, :target_id, CAST(:answers AS jsonb), :leaflets,
            :stickers, :visited_at, :request_hash)
    ON CONFLICT (id) DO NOTHING
    """
)

_LINK = text(
    "UPDATE reports SET visit_id = :visit WHERE id = :report "
    "AND (visit_id IS NULL OR visit_id = :visit)"
)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def visit_answer(m: Any) -> dict:
    """Return the JSON shape of a stored visit."""
    grid = (
        {"code": m["grid_code"], "name": m["grid_name"], "kind": m["grid_kind"]}
        if m["grid_code"]
        else None
    )
    dist = m["assignment_distance_m"]
    reports = m["reports"] if isinstance(m["reports"], list) else orjson.loads(m["reports"])
    shot = m["photos"] if isinstance(m["photos"], list) else orjson.loads(m["photos"])
    return {
        "id": str(m["id"]),
        "campaign": m["campaign_code"],
        "lon": round(m["lon"], 7),
        "lat": round(m["lat"], 7),
        "source": {"crs": m["source_crs"], "lon": m["source_lon"], "lat": m["source_lat"]},
        "accuracy_m": m["accuracy_m"],
        "visited_at": _iso(m["visited_at"]),
        "created_at": _iso(m["created_at"]),
        "visitor": m["visitor"],
        "grid": grid,
        "district": m["district_code"],
        "assignment": {
            "method": m["assignment_method"],
            "distance_m": None if dist is None else round(dist, 1),
        },
        "target": {"id": str(m["target_id"]), "ref": m["target_ref"]} if m["target_id"] else None,
        "answers": m["answers"],
        "leaflets": m["leaflets"],
        "stickers": m["stickers"],
        "reports": reports,
        "photos": [photos.answer_from_json(p, PHOTO_URL) for p in shot],
    }


def _stored(conn: Connection, visit_id: uuid.UUID) -> dict | None:
    row = conn.execute(_SELECT, {"id": visit_id}).mappings().first()
    return dict(row) if row else None


def _replay(conn: Connection, item: NewVisit, fingerprint: str, who: Principal) -> dict | None:
    """Return the stored visit when this request was seen before; Conflict if it differs."""
    row = _stored(conn, item.id)
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise Conflict(
            f"id {item.id} was already used for a different visit; send a new id for a new "
            "visit, or resend the identical visit to get the stored one"
        )
    return _shown(conn, who, visit_answer(row))


def _shown(conn: Connection, who: Principal, visit: dict) -> dict:
    return {**visit, "photos": visible_reuse(conn, who, visit["photos"])}


def _stopped_at(c: dict) -> datetime | None:
    """Return when the campaign last stopped taking visits (paused or closed after launch)."""
    launched = c["launched_at"]
    after = [t for t in (c["paused_at"], c["closed_at"]) if t and launched and t > launched]
    return min(after) if after else None


def check_open(c: dict, visited_at: datetime) -> None:
    """Raise Conflict unless the campaign takes a visit made at `visited_at`: it is launched,
    or it is paused or closed and the visit was made while it ran."""
    status = c["status"]
    if status == CampaignStatus.LAUNCHED:
        return
    stopped = _stopped_at(c)
    if stopped and c["launched_at"] <= visited_at < stopped:
        return  # made while it ran, sent from an offline queue
    hint = {
        CampaignStatus.DRAFT: "it has not been launched yet",
        CampaignStatus.PAUSED: "it is paused; visits are taken again once it is relaunched",
        CampaignStatus.CLOSED: "it is closed",
    }[CampaignStatus(status)]
    since = f" (since {_iso(stopped)})" if stopped else ""
    raise Conflict(f"campaign {c['code']} takes no visits: {hint}{since}")


def _check_place(c: dict, a: Assignment, lon: float, lat: float) -> None:
    if a.district_code in c["districts"]:
        return
    where = f"in district {a.district_code}" if a.district_code else "outside every district"
    raise InvalidInput(
        f"({lon:.6f}, {lat:.6f}) lies {where}, outside campaign {c['code']}'s districts "
        f"({', '.join(c['districts'])}); check the position and its crs (wgs84/gcj02/bd09)"
    )


def create(
    conn: Connection,
    item: NewVisit,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
    who: Principal,
    sensitive_themes: tuple[str, ...],
) -> tuple[dict, bool]:
    """Store a visit made by `who` with its reports; return (visit, created). A replay
    answers the stored visit unchanged."""
    if who.role not in VISIT_ROLES:
        raise Forbidden(
            f"visits are made by {taxonomy.roles_text(VISIT_ROLES)} on site; you are logged in "
            f"as {who.role or 'no role'}"
        )
    fingerprint = item.fingerprint(who.user_id)
    seen = _replay(conn, item, fingerprint, who)
    if seen is not None:
        return seen, False
    c = get_row(conn, item.campaign)
    check_visitor(conn, who, c)
    visited_at = intake.check_time(item.visited_at, rules, "visited_at")
    check_open(c, visited_at)
    answers = checklist.check_answers(checklist.parse(c["checklist"]), item.answers, c["code"])
    lon_a, lat_a = to_wgs84(item.lon, item.lat, item.crs)
    lon, lat = float(lon_a), float(lat_a)
    a = assign_point(
        conn, lon, lat, item.accuracy_m, rules.snap_tolerance_m, rules.service_area_margin_m
    )
    _check_place(c, a, lon, lat)
    target = targets.find(conn, who, c["code"], item.target) if item.target else None
    converted = item.crs != SourceCRS.WGS84
    params = {
        "id": item.id,
        "campaign": c["code"],
        "user_id": who.user_id,
        "visitor": who.name or who.username,
        "lon": lon,
        "lat": lat,
        "source_crs": item.crs,
        "source_lon": item.lon if converted else None,
        "source_lat": item.lat if converted else None,
        "accuracy_m": item.accuracy_m,
        "grid_code": a.grid_code,
        "method": a.method,
        "distance_m": a.distance_m,
        "district_code": a.district_code,
        "target_id": target["id"] if target else None,
        "answers": orjson.dumps(answers).decode(),
        "leaflets": item.leaflets,
        "stickers": item.stickers,
        "visited_at": visited_at,
        "request_hash": fingerprint,
    }
    if not conn.execute(_INSERT, params).rowcount:
        # The same id stored by a concurrent send between our look and our insert.
        seen = _replay(conn, item, fingerprint, who)
        if seen is None:  # pragma: no cover - the conflicting row cannot vanish in between
            raise Conflict("the visit id is taken; retry")
        return seen, False
    found = _add_reports(conn, item, c["code"], visited_at, rules, worktime, who, sensitive_themes)
    changes = {
        "campaign": [None, c["code"]],
        "grid": [None, a.grid_code],
        "target": [None, target["ref"] if target else None],
        "reports": [None, found],
    }
    audit.record(conn, who, "visit.create", "visit", item.id, changes)
    stored = _stored(conn, item.id)
    assert stored is not None  # noqa: S101 - inserted above in this transaction
    return visit_answer(stored), True


def _add_reports(
    conn: Connection,
    item: NewVisit,
    campaign: str,
    visited_at: datetime,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
    who: Principal,
    sensitive_themes: tuple[str, ...],
) -> list[str]:
    """Store the hazards found on the visit through report intake, each linked to the visit
    and the campaign; return their ids. A report already linked elsewhere is a Conflict."""
    ids = []
    for i, report in enumerate(item.reports):
        if report.campaign not in (None, campaign):
            raise InvalidInput(
                f"reports[{i}]: campaign {report.campaign} is not the visit's ({campaign}); "
                "leave it out: a visit's reports belong to its campaign"
            )
        new = replace(report, campaign=campaign, reported_at=report.reported_at or visited_at)
        try:
            stored, _ = intake.create(conn, new, rules, worktime, who, sensitive_themes)
        except InvalidInput as exc:
            raise InvalidInput(f"reports[{i}]: {exc}") from None
        except Conflict as exc:
            raise Conflict(f"reports[{i}]: {exc}") from None
        report_id = uuid.UUID(stored["id"])
        linked = conn.execute(_LINK, {"visit": item.id, "report": report_id}).rowcount
        if not linked:
            raise Conflict(
                f"reports[{i}]: report {stored['id']} was found on another visit; send it "
                "with a new id"
            )
        ids.append(stored["id"])
    return ids


# Reading a visit: the scope (as for reports), then the households' rights for a household's.


def scope_condition(who: Principal) -> tuple[str, dict]:
    """Return the SQL condition on `visits v` of the visits `who` may read, and its binds:
    admins and planners every one, dispatchers and coordinators their districts' (all when
    unbound), a department those of the campaigns it is a partner in, a worker their own and
    their grids'; none for other roles (a visit to a household is held further: `readable`)."""
    if who.role in (Role.ADMIN, Role.PLANNER):
        return "TRUE", {}
    if who.role in (Role.DISPATCHER, Role.COORDINATOR):
        if not who.districts:
            return "TRUE", {}
        return "v.district_code = ANY(:vs_districts)", {"vs_districts": list(who.districts)}
    if who.role == Role.DEPARTMENT and who.department:
        return (
            "EXISTS (SELECT 1 FROM campaigns c WHERE c.code = v.campaign_code "
            "AND :vs_department = ANY(c.departments))",
            {"vs_department": who.department},
        )
    if who.role == Role.WORKER:
        return (
            "(v.user_id = :vs_user OR v.grid_code = ANY(:vs_grids))",
            {"vs_user": who.user_id or -1, "vs_grids": list(who.grids)},
        )
    return "FALSE", {}


# `personal`: a visit to a household; `household_seen`: by `who`, or a household they see.
_ACCESS = """
    SELECT v.id, v.user_id, ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat, v.visited_at,
           COALESCE(t.register = 'households', FALSE) AS personal,
           COALESCE(hh.members, 0) AS people,
           COALESCE(v.user_id = :vs_me, FALSE) OR COALESCE(hh.seen, FALSE) AS household_seen
    FROM visits v
    LEFT JOIN campaign_targets t ON t.id = v.target_id
    LEFT JOIN LATERAL (
      SELECT h.members, {households} AS seen FROM households h
      LEFT JOIN grids g ON g.code = h.grid_code WHERE h.id = t.household_id
    ) hh ON TRUE
    WHERE {scoped} AND {which}
"""


def _access(conn: Connection, who: Principal, which: str, params: dict) -> Sequence[Any]:
    scoped, scope_params = scope_condition(who)
    seen, seen_params = households.scope_condition(who)
    sql = _ACCESS.format(households=seen, scoped=scoped, which=which)
    binds = {**scope_params, **seen_params, **params, "vs_me": who.user_id or -1}
    return conn.execute(text(sql), binds).all()


def readable(conn: Connection, who: Principal, visit_id: uuid.UUID) -> Any:
    """Return the visit `who` may read (id, user_id, lon, lat, visited_at, personal, people);
    NotFound outside their scope or for a household outside theirs, Forbidden for a visit to a
    household when their role sees no households."""
    rows = _access(conn, who, "v.id = :vs_id", {"vs_id": visit_id})
    if not rows:
        raise NotFound(f"no visit with id {visit_id}")
    row = rows[0]
    if row.personal and not row.household_seen:
        if not who.sees_households:
            raise Forbidden(
                "a visit to a household is personal data: it and its photos are shown to its "
                "visitor, admins, coordinators (their districts) and workers (their grids), not "
                f"to a {who.role or 'caller without a role'}; the campaign's coverage gives the "
                "counts per grid"
            )
        raise NotFound(f"no visit with id {visit_id}")
    return row


def audit_read(conn: Connection, who: Principal, row: Any, what: str, object_id: object) -> None:
    """Record a read of a visit to a household (`row` from `readable`) or of its photo."""
    if row.personal:
        audit.record(conn, who, audit.PERSONAL_DATA_READ, what, object_id, people=int(row.people))


def read(conn: Connection, who: Principal, visit_id: uuid.UUID) -> tuple[dict, bool]:
    """Return (the visit as `who` may read it, with its photos; whether it is personal data,
    its read audited in `conn`'s transaction)."""
    row = readable(conn, who, visit_id)
    stored = _stored(conn, visit_id)
    assert stored is not None  # noqa: S101 - read above in this transaction
    audit_read(conn, who, row, "visit", visit_id)
    return _shown(conn, who, visit_answer(stored)), bool(row.personal)


def visible_reuse(conn: Connection, who: Principal, shown: list[dict]) -> list[dict]:
    """Return photo answers with `reused_from` (another visit) kept only where `who` may read
    that visit (the `reused` flag stays)."""
    named = sorted({p["reused_from"] for p in shown if p["reused_from"]})
    if not named:
        return shown
    rows = _access(conn, who, "v.id = ANY(CAST(:vs_ids AS uuid[]))", {"vs_ids": named})
    seen = {str(r.id) for r in rows if not r.personal or r.household_seen}
    return [
        {**p, "reused_from": p["reused_from"] if p["reused_from"] in seen else None} for p in shown
    ]
