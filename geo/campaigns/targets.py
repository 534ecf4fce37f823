"""A campaign's target list (走访对象): whom or what its visits must reach.

Two kinds of register:
- `households`: the household register, with a filter (`{"living_alone_over": 60}`: someone
  over 60 living alone). The households matching it in the campaign's districts are taken
  into the list when the campaign launches (and again on a relaunch, adding those registered
  since): a fixed list is what coverage is measured against. A household target keeps only
  the register's id; names, phones and positions stay in `households` and are shown only to
  the roles that see households, within their scope, each read audited. Others get counts.
- `workshops`, `venues`: points imported into the campaign (name, ref), e.g. the small
  workshops (小作坊) of 创安六号; not personal data.

Every target carries its grid, assigned by the report rules.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from geo.coords import to_wgs84
from geo.db.copy import copy_rows
from geo.errors import Conflict, InvalidInput
from geo.grids.assignment import assignment_ctes, snap_params, stage_points
from geo.identity import audit
from geo.identity.principal import Principal
from geo.risk import households
from geo.vocabulary import Role

HOUSEHOLDS = "households"
POINT_REGISTERS = ("workshops", "venues")
REGISTERS = (HOUSEHOLDS, *POINT_REGISTERS)
MAX_IMPORT = 20_000
MAX_REF = 64
MAX_NAME = 200
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 500
# As the API's plain text (api.schemas), and half surrogate pairs: PostgreSQL refuses a NUL
# or a lone surrogate in jsonb and text (a 500), a bidi override turns a name around.
_REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

# The household register's filter: key → (type, condition on `households h`).
HOUSEHOLD_FILTERS: dict[str, tuple[type, str]] = {
    "living_alone_over": (int, "(h.living_alone AND h.oldest_age > :f_living_alone_over)"),
    "oldest_over": (int, "h.oldest_age > :f_oldest_over"),
    "over_60": (bool, "(h.over_60 > 0) = :f_over_60"),
    "living_alone": (bool, "h.living_alone = :f_living_alone"),
    "mobility_needs": (bool, "h.mobility_needs = :f_mobility_needs"),
    "vulnerable": (bool, f"{households.VULNERABLE} = :f_vulnerable"),
}


def check_spec(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return a campaign's `targets` (its register and filter) checked, or None for none."""
    if spec is None:
        return None
    register = spec.get("register")
    if register not in REGISTERS:
        raise InvalidInput(f"targets.register must be one of: {', '.join(REGISTERS)}")
    extra = set(spec) - {"register", "filter"}
    if extra:
        raise InvalidInput(f"targets: unknown field(s) {', '.join(sorted(extra))}")
    if register != HOUSEHOLDS:
        if spec.get("filter"):
            raise InvalidInput(
                f"targets.filter is for the household register; {register} are imported points"
            )
        return {"register": register}
    found = spec.get("filter") or {}
    for key, value in found.items():
        kind = HOUSEHOLD_FILTERS.get(key, (None, ""))[0]
        if kind is None:
            raise InvalidInput(
                f"targets.filter.{key}: unknown; one of: {', '.join(HOUSEHOLD_FILTERS)}"
            )
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok or (kind is int and not 0 <= value <= 150):
            what = "true or false" if kind is bool else "an age from 0 to 150"
            raise InvalidInput(f"targets.filter.{key}: send {what} (got {value!r})")
    return {"register": HOUSEHOLDS, "filter": dict(found)}


def _household_condition(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    clauses = ["TRUE"]
    params: dict[str, Any] = {}
    for key, value in (spec.get("filter") or {}).items():
        clauses.append(HOUSEHOLD_FILTERS[key][1])
        params[f"f_{key}"] = value
    return " AND ".join(clauses), params


def take_households(conn: Connection, campaign: dict) -> int:
    """Add the register's households matching the campaign's filter in its districts to its
    targets (those already there stay); return how many were added."""
    spec = campaign["targets"]
    if not spec or spec["register"] != HOUSEHOLDS:
        return 0
    where, params = _household_condition(spec)
    result = conn.execute(
        text(
            f"""
            INSERT INTO campaign_targets (id, campaign_code, register, ref, household_id,
                                          grid_code, district_code)
            SELECT gen_random_uuid(), :code, 'households', h.code, h.id, h.grid_code,
                   h.district_code
            FROM households h
            WHERE h.district_code = ANY(:districts) AND {where}
            ON CONFLICT (campaign_code, ref) DO NOTHING
            """
        ),
        {**params, "code": campaign["code"], "districts": list(campaign["districts"])},
    )
    return result.rowcount


def find(conn: Connection, who: Principal, campaign: str, target: str) -> dict:
    """Return the campaign's target named by id or ref (id, ref) that `who` may visit: a
    household only within their households' scope (a worker's grids), so that a visit tells
    nothing of the households elsewhere; InvalidInput, the same for all, when none."""
    try:
        where, value = "t.id = :t", uuid.UUID(target)
    except ValueError:
        where, value = "t.ref = :t", target  # type: ignore[assignment]
    scoped, params = households.scope_condition(who)
    row = (
        conn.execute(
            text(
                f"SELECT t.id, t.ref FROM campaign_targets t {_HOUSEHOLD_ANY_JOIN} "
                f"WHERE t.campaign_code = :c AND {where} "
                f"AND (t.register <> '{HOUSEHOLDS}' OR {scoped})"
            ),
            {**params, "c": campaign, "t": value},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise InvalidInput(
            f"target {target!r} is not on the target list of {campaign} (the targets you may "
            "visit: a household of your grids, or an imported place); send the id or ref of one"
        )
    return dict(row)


def _text_refused(value: str) -> str | None:
    """Return why `value` is not plain text (a control character, a bidi control, half a
    surrogate pair), or None when it is."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    return f"must not contain U+{ord(found.group()):04X} (at character {found.start()})"


def _text(where: str, value: Any, most: int, required: bool = False) -> str | None:
    """Return `value` checked as plain text of at most `most` characters (None if allowed)."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not (1 if required else 0) <= len(value) <= most:
        size = f"1 to {most}" if required else f"at most {most}"
        raise InvalidInput(f"{where} must be text of {size} characters")
    if (why := _text_refused(value)) is not None:
        raise InvalidInput(f"{where} {why}; remove it")
    return value


def _attributes(where: str, props: dict) -> dict:
    """Return the properties kept besides ref and name: a few flat values (a GIS table's
    columns), checked: they are stored as JSON and listed back."""
    others = {k: v for k, v in props.items() if k not in ("ref", "name")}
    if len(others) > MAX_ATTRIBUTES:
        raise InvalidInput(f"{where}: at most {MAX_ATTRIBUTES} properties besides ref and name")
    for key, value in others.items():
        _text(f"{where}: a property name", key, MAX_REF, required=True)
        at = f"{where}: properties.{key}"
        if isinstance(value, str):
            _text(at, value, MAX_ATTRIBUTE_TEXT)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{at} must be a finite number (got {value})")
        elif value is not None and not isinstance(value, bool | int | float):
            raise InvalidInput(
                f"{at} must be text, a number, true/false or null (got {type(value).__name__})"
            )
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            raise InvalidInput(f"{at}: {value} is past the numbers kept exactly (2^53)")
    return others


def _point(i: int, feature: Any) -> tuple[float, float, str, str | None, dict]:
    """Return (x, y, ref, name, other properties) of an imported feature, checked."""
    where = f"features[{i}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InvalidInput(f"{where}: not a GeoJSON Feature")
    geom = feature.get("geometry") or {}
    xy = geom.get("coordinates") if isinstance(geom, dict) else None
    if not isinstance(geom, dict) or geom.get("type") != "Point":
        raise InvalidInput(f"{where}: the geometry must be a Point [lon, lat]")
    if not isinstance(xy, list) or len(xy) not in (2, 3):
        raise InvalidInput(f"{where}: the geometry must be a Point [lon, lat]")
    try:
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in xy):
            raise ValueError(xy)
        x, y = float(xy[0]), float(xy[1])  # an int past a float's range: OverflowError
    except (ValueError, OverflowError):
        raise InvalidInput(f"{where}: the point's coordinates must be numbers") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidInput(f"{where}: the point's coordinates must be finite numbers")
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise InvalidInput(f"{where}: ({x}, {y}) is not a lon/lat position")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidInput(f"{where}: properties must be an object")
    ref = _text(f"{where}: properties.ref", props.get("ref"), MAX_REF, required=True)
    name = _text(f"{where}: properties.name", props.get("name"), MAX_NAME)
    return x, y, str(ref), name, _attributes(where, props)


def _refs_unique(points: list[tuple]) -> None:
    seen: dict[str, int] = {}
    for i, p in enumerate(points):
        if p[2] in seen:
            raise InvalidInput(f"features[{i}]: ref {p[2]!r} is also features[{seen[p[2]]}]'s")
        seen[p[2]] = i


_ASSIGN = f"""
    CREATE TEMP TABLE stage_target_assigned ON COMMIT DROP AS
    WITH {assignment_ctes("stage_target_points", grids_outer=True)}
    SELECT a.id, a.grid_code, a.district_code FROM assigned a
"""

_UPSERT = """
    WITH up AS (
      INSERT INTO campaign_targets (id, campaign_code, register, ref, name, geom, grid_code,
                                    district_code, attributes)
      SELECT s.id, :code, :register, s.ref, s.name, p.geom, a.grid_code, a.district_code,
             CAST(s.attributes AS jsonb)
      FROM stage_targets s JOIN stage_target_points p ON p.id = s.id
      JOIN stage_target_assigned a ON a.id = s.id
      ON CONFLICT (campaign_code, ref) DO UPDATE SET
        name = EXCLUDED.name, geom = EXCLUDED.geom, grid_code = EXCLUDED.grid_code,
        district_code = EXCLUDED.district_code, attributes = EXCLUDED.attributes
      WHERE (campaign_targets.name, campaign_targets.grid_code, campaign_targets.attributes)
            IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.grid_code, EXCLUDED.attributes)
         OR NOT ST_Equals(campaign_targets.geom, EXCLUDED.geom)
      RETURNING (xmax = 0) AS added
    )
    SELECT count(*) FILTER (WHERE added) AS added, count(*) FILTER (WHERE NOT added) AS changed
    FROM up
"""


def import_points(
    conn: Connection,
    who: Principal,
    campaign: dict,
    features: list[Any],
    crs: str,
    snap_m: float,
) -> dict[str, int]:
    """Upsert (by ref) the points of a GeoJSON feature list into the campaign's targets, each
    given its grid by the report rules; all or nothing: a point outside the campaign's
    districts or outside every grid refuses the import. Return counts; audited."""
    register = (campaign["targets"] or {}).get("register")
    if register not in POINT_REGISTERS:
        raise Conflict(
            f"campaign {campaign['code']}'s targets are "
            + (f"the {register} register, taken at launch" if register else "not set")
            + "; points are imported into a campaign whose targets are "
            + " or ".join(POINT_REGISTERS)
        )
    if campaign["status"] == "closed":
        raise Conflict(f"campaign {campaign['code']} is closed: its target list is kept as it ran")
    if not 0 < len(features) <= MAX_IMPORT:
        raise InvalidInput(f"send 1 to {MAX_IMPORT:,} features (got {len(features):,})")
    points = [_point(i, f) for i, f in enumerate(features)]
    _refs_unique(points)
    lon, lat = to_wgs84(np.array([p[0] for p in points]), np.array([p[1] for p in points]), crs)
    placed = [(float(lon[i]), float(lat[i]), *p[2:]) for i, p in enumerate(points)]
    counts = store_points(conn, campaign, placed, snap_m)
    audit.record(conn, who, "campaign.targets.import", "campaign", campaign["code"], counts)
    return counts


def store_points(
    conn: Connection,
    campaign: dict,
    points: list[tuple[float, float, str, str | None, dict]],
    snap_m: float,
    ids: list[uuid.UUID] | None = None,
) -> dict[str, int]:
    """Upsert WGS-84 points (lon, lat, ref, name, other properties) into the campaign's
    targets by ref, with their grids; InvalidInput (nothing stored) when one lies outside
    every grid or the campaign's districts. Return counts. `ids` name new targets (default:
    random)."""
    ids = ids or [uuid.uuid4() for _ in points]
    conn.execute(
        text(
            "CREATE TEMP TABLE stage_targets (id uuid, ref text, name text, attributes text, "
            "lon float8, lat float8) ON COMMIT DROP"
        )
    )
    rows = (
        (ids[i], p[2], p[3], json.dumps(p[4], ensure_ascii=False), p[0], p[1])
        for i, p in enumerate(points)
    )
    copy_rows(conn, "stage_targets", ("id", "ref", "name", "attributes", "lon", "lat"), rows)
    stage_points(conn, "stage_targets", "stage_target_points")
    conn.execute(text(_ASSIGN), snap_params(snap_m))
    _check_placed(conn, ids, points, list(campaign["districts"]))
    register = campaign["targets"]["register"]
    row = conn.execute(text(_UPSERT), {"code": campaign["code"], "register": register}).one()
    for temp in ("stage_target_assigned", "stage_target_points", "stage_targets"):
        conn.execute(text(f"DROP TABLE {temp}"))
    return {
        "received": len(points),
        "added": int(row.added),
        "changed": int(row.changed),
        "unchanged": len(points) - int(row.added) - int(row.changed),
    }


def _check_placed(
    conn: Connection, ids: list[uuid.UUID], points: list[tuple], districts: list[str]
) -> None:
    """Raise InvalidInput naming the first points outside every grid or the districts."""
    bad = conn.execute(
        text(
            "SELECT id, grid_code, district_code FROM stage_target_assigned "
            "WHERE grid_code IS NULL OR NOT (district_code = ANY(:d)) LIMIT 20"
        ),
        {"d": districts},
    ).all()
    if not bad:
        return
    index = {v: i for i, v in enumerate(ids)}
    why = [
        f"features[{index[r.id]}] ({points[index[r.id]][2]}): "
        + (
            "outside every grid"
            if r.grid_code is None
            else f"in district {r.district_code}, outside the campaign's"
        )
        for r in sorted(bad, key=lambda r: index[r.id])
    ]
    raise InvalidInput(
        "targets lie where the campaign does not: " + "; ".join(why) + ". Check the positions "
        "and their crs (wgs84/gcj02/bd09), or the campaign's districts."
    )


_VISITS_OF = """
    LEFT JOIN LATERAL (SELECT count(*) AS visits, max(v.visited_at) AS last_visit
                       FROM visits v WHERE v.campaign_code = t.campaign_code
                         AND v.target_id = t.id) vs ON TRUE
"""


def listing(
    conn: Connection,
    who: Principal,
    campaign: dict,
    todo_mine: bool,
    limit: int,
    offset: int,
    k: int,
) -> dict:
    """Return the campaign's targets as `who` may see them, with their visits: the whole list,
    or (`todo_mine`) a grid worker's targets in their grids not yet visited. Household targets
    show the household (audited, with the people shown) to the roles that see households,
    within their scope; other roles get the counts alone (`targets` is null), those from 1 to
    k-1 withheld as the coverage's totals are."""
    if todo_mine and who.role != Role.WORKER:
        raise InvalidInput("todo=mine is a grid worker's list of their grids' targets to visit")
    register = (campaign["targets"] or {}).get("register")
    where = ["t.campaign_code = :code"]
    params: dict[str, Any] = {"code": campaign["code"], "limit": limit, "offset": offset}
    if todo_mine:
        where.append("t.grid_code = ANY(:mine) AND vs.visits = 0")
        params["mine"] = list(who.grids)
    households_shown = register == HOUSEHOLDS and who.sees_households
    if register == HOUSEHOLDS and not who.sees_households:
        return _counts_only(conn, campaign, register, k)
    if households_shown:
        scoped, scope_params = households.scope_condition(who)
        where.append(scoped)
        params.update(scope_params)
    sql_where = " AND ".join(where)
    rows = (
        conn.execute(
            text(
                f"""
            SELECT {_HOUSEHOLD_COLUMNS if households_shown else _POINT_COLUMNS},
                   t.grid_code, t.district_code, vs.visits, vs.last_visit,
                   count(*) OVER () AS total
            FROM campaign_targets t {_HOUSEHOLD_JOIN if households_shown else ""} {_VISITS_OF}
            WHERE {sql_where}
            ORDER BY t.grid_code, t.ref LIMIT :limit OFFSET :offset
            """
            ),
            params,
        )
        .mappings()
        .all()
    )
    total = int(rows[0]["total"]) if rows else _count(conn, sql_where, params, households_shown)
    shown = [{k: v for k, v in r.items() if k != "total"} for r in rows]
    if households_shown:
        people = sum(int(r["members"] or 0) for r in shown)
        audit.record(
            conn, who, audit.PERSONAL_DATA_READ, "campaign_targets", campaign["code"], people=people
        )
    return {
        "campaign": campaign["code"],
        "register": register,
        "todo": "mine" if todo_mine else None,
        "total": total,
        "targets": shown,
    }


_POINT_COLUMNS = """t.id, t.ref, t.name, t.register,
    round(ST_X(t.geom)::numeric, 7)::float8 AS lon, round(ST_Y(t.geom)::numeric, 7)::float8 AS lat,
    t.attributes"""
_HOUSEHOLD_COLUMNS = """t.id, t.ref, t.register, h.head_name, h.phone, h.address, h.members,
    h.over_60, h.oldest_age, h.living_alone, h.mobility_needs,
    round(ST_X(h.geom)::numeric, 7)::float8 AS lon,
    round(ST_Y(h.geom)::numeric, 7)::float8 AS lat"""
_HOUSEHOLD_JOIN = """JOIN households h ON h.id = t.household_id
    LEFT JOIN grids g ON g.code = h.grid_code"""
_HOUSEHOLD_ANY_JOIN = """LEFT JOIN households h ON h.id = t.household_id
    LEFT JOIN grids g ON g.code = h.grid_code"""


def _count(conn: Connection, where: str, params: dict, households_shown: bool) -> int:
    return int(
        conn.execute(
            text(
                f"SELECT count(*) FROM campaign_targets t "
                f"{_HOUSEHOLD_JOIN if households_shown else ''} {_VISITS_OF} WHERE {where}"
            ),
            params,
        ).scalar_one()
    )


def _counts_only(conn: Connection, campaign: dict, register: str, k: int) -> dict:
    row = conn.execute(
        text(
            f"""
            SELECT count(*) AS total, count(*) FILTER (WHERE vs.visits > 0) AS visited
            FROM campaign_targets t {_VISITS_OF} WHERE t.campaign_code = :code
            """
        ),
        {"code": campaign["code"]},
    ).one()
    # One household alone over 85 in a district is a person: small counts are withheld.
    counts = {"total": int(row.total), "visited": int(row.visited)}
    households.withhold([counts], k, ("total", "visited"))
    return {
        "campaign": campaign["code"],
        "register": register,
        "todo": None,
        "total": counts["total"],
        "visited": counts["visited"],
        "suppressed": counts.get("suppressed", False),
        "targets": None,
        "withheld": "household targets are personal data: shown to admins, coordinators and "
        "workers within their scope; the coverage gives the counts per grid",
    }
