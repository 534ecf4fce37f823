"""What lies inside a drawn area: grids, unresolved hazards, households, the relocation list.

An area lies within the service area (every point of it as near a grid as a report must be),
and its size is checked on two measures, geodesic and equal-area planar, so that no ring across
the antimeridian or around the globe passes the cap with a geodesic area of 0. What it holds is
shown as the asker may see it: the relocation list to coordinators (their districts) and
admins, every read of it audited; to everyone else, counts from 1 to k-1 withheld.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from sqlalchemy import Connection, Row, text

from geo.cache import Versions, cached
from geo.coords import SourceCRS, to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.geometry import repair_polygonal
from geo.identity import audit
from geo.identity.principal import Principal
from geo.identity.scope import ReportScope, report_scope, scope_condition
from geo.projection import grids_utm_srid
from geo.reports import taxonomy
from geo.reports.fragments import ACTIVE, masked_binds, point_within
from geo.risk import households
from geo.risk.households import COMPREHENSIVE_OF_HOUSEHOLD, COUNTS, VULNERABLE
from geo.settings import AuthSettings, RiskSettings

# Authalic radius of WGS-84: the sphere of the same area, for the equal-area measure.
AUTHALIC_R_M = 6_371_007.2


@dataclass
class Area:
    """A checked query area in WGS-84, what was done to it, and what it is (for the audit)."""

    geom: shapely.MultiPolygon
    notes: list[str]
    source: str = "polygon"

    @property
    def label(self) -> str:
        """Return what the area is, as the audit log's object id (at most 64 characters)."""
        if self.source != "polygon":
            return self.source
        return ("polygon bbox=" + ",".join(f"{v:.4f}" for v in self.geom.bounds))[:64]


def area_from_geojson(geometry: object, crs: str, repair: bool, rules: RiskSettings) -> Area:
    """Return the query polygon from GeoJSON; InvalidInput says what is wrong with it."""
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidInput("geometry must be a GeoJSON Polygon or MultiPolygon")
    try:
        geom = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise InvalidInput(
            "geometry coordinates are malformed: a polygon is a list of rings, each a list of "
            f"at least 4 [lon, lat] positions, the last equal to the first ({exc})"
        ) from None
    coords = shapely.get_coordinates(geom)
    n = len(coords)
    if n > rules.max_query_vertices:
        raise InvalidInput(
            f"the polygon has {n:,} vertices, more than {rules.max_query_vertices:,}; simplify it"
        )
    if n < 4 or not np.isfinite(coords).all():
        raise InvalidInput("geometry needs at least 4 finite [lon, lat] positions")
    if crs not in {c.value for c in SourceCRS}:
        raise InvalidInput(f"unknown crs {crs!r}: wgs84, cgcs2000, gcj02 or bd09")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise InvalidInput("positions are [lon, lat] in degrees: lon within ±180, lat within ±90")
    if crs not in ("wgs84", "cgcs2000"):

        def convert(xy: np.ndarray) -> np.ndarray:
            lon, lat = to_wgs84(xy[:, 0], xy[:, 1], crs)
            return np.column_stack([lon, lat])

        geom = shapely.transform(geom, convert)
    return check_area(geom, repair, rules)


def check_area(geom: shapely.Geometry, repair: bool, rules: RiskSettings) -> Area:
    """Return a valid polygonal area within the size limit, repaired when allowed."""
    _check_edges(geom)
    if not repair and not geom.is_valid:
        raise InvalidInput(
            f"the polygon is invalid ({shapely.is_valid_reason(geom)}); redraw it without "
            'crossing edges, or send "repair": true to have it repaired'
        )
    fixed = repair_polygonal(geom)
    notes: list[str] = []
    if fixed.reason is not None:
        notes.append(f"the polygon was invalid ({fixed.reason}) and was repaired")
    poly = fixed.polygons
    if poly is None:
        raise InvalidInput("the polygon has no area")
    km2 = max(_geodesic_km2(poly), _equal_area_km2(poly))
    if km2 > rules.max_query_km2:
        raise InvalidInput(
            f"the area is {km2:,.0f} km², more than {rules.max_query_km2:,.0f} km²; draw a "
            "smaller one, or rank the grids instead"
        )
    return Area(poly, notes)


def _check_edges(geom: shapely.Geometry) -> None:
    """Refuse a ring with an edge across more than 180° of longitude: it crosses the
    antimeridian or wraps the globe, and its geodesic area means nothing (-180° to 180°: 0)."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    span = np.abs(np.diff(xy[:, 0]))
    wide = np.flatnonzero((ring[1:] == ring[:-1]) & (span > 180))
    if wide.size:
        i = int(wide[0])
        raise InvalidInput(
            f"an edge runs from longitude {xy[i, 0]:g} to {xy[i + 1, 0]:g}, across more than "
            "180°: a query polygon may not cross the antimeridian or wrap around the globe; "
            "draw it over the service area, longitudes within -180..180 without a jump"
        )


def _geodesic_km2(geom: shapely.Geometry) -> float:
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0]) / 1e6


def _equal_area_km2(geom: shapely.Geometry) -> float:
    """Return the area on the cylindrical equal-area projection (edges drawn straight in
    degrees): a valid polygon with an area never measures 0 here, whatever its geodesic edges."""

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = np.radians(xy[:, 0]), np.radians(xy[:, 1])
        return np.column_stack([AUTHALIC_R_M * lon, AUTHALIC_R_M * np.sin(lat)])

    return float(shapely.transform(geom, project).area) / 1e6


def service_area(conn: Connection, v: Versions, margin_m: float) -> bytes | None:
    """Return the service area as WKB (WGS-84): the grids grown by `margin_m` metres, where
    reports are taken; None without grids. Cached per boundary version (0.3 s for 5,000 grids)."""

    def compute() -> bytes | None:
        srid = grids_utm_srid(conn, v)
        wkb = conn.execute(
            text(
                "SELECT ST_AsBinary(ST_Transform(ST_Buffer(ST_Transform(ST_Union(geom), "
                f"{srid}), :margin, 'quad_segs=16'), 4326)) FROM grids"
            ),
            {"margin": margin_m},
        ).scalar_one()
        return None if wkb is None else bytes(wkb)

    return cached(("service_area", *v.boundary_key, margin_m), compute)[0]


def _no_grids() -> InvalidInput:
    return InvalidInput("no grids are loaded yet: import boundaries before querying areas")


_OUTSIDE = text(
    """
    WITH s AS (SELECT ST_GeomFromWKB(:service, 4326) AS geom),
    o AS (SELECT ST_Difference(ST_GeomFromWKB(:wkb, 4326), s.geom) AS geom FROM s)
    SELECT ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
           (SELECT ST_Distance(g.geom::geography, p.geom::geography) FROM grids g
            ORDER BY g.geom <-> p.geom LIMIT 1) AS nearest_m
    FROM o, s CROSS JOIN LATERAL (
      SELECT d.geom FROM ST_DumpPoints(o.geom) d ORDER BY ST_Distance(d.geom, s.geom) DESC
      LIMIT 1) p
    WHERE NOT ST_IsEmpty(o.geom)
    """
)


def check_service_area(
    conn: Connection, area: Area, service: bytes | None, margin_m: float
) -> None:
    """Raise InvalidInput when part of `area` lies outside the service area (`service_area`):
    farther than `margin_m` from every grid, where no report would be taken either."""
    if service is None:
        raise _no_grids()
    row = conn.execute(_OUTSIDE, {"wkb": shapely.to_wkb(area.geom), "service": service}).first()
    if row is None:
        return
    raise InvalidInput(
        f"the polygon reaches outside the service area: ({row.lon:.6f}, {row.lat:.6f}) is "
        f"{row.nearest_m / 1000:,.1f} km from the nearest grid (limit {margin_m / 1000:g} km). "
        "Draw it over the grids, and check its crs (wgs84/gcj02/bd09)."
    )


_FEATURE_AREA = text(
    """
    WITH f AS (
      SELECT CASE WHEN :d > 0 THEN ST_Buffer(geom::geography, :d)::geometry ELSE geom END
               AS geom, ST_Dimension(geom) AS dim
      FROM risk_layers WHERE kind = :kind AND code = :code
    ), s AS (SELECT ST_GeomFromWKB(:service, 4326) AS geom)
    SELECT ST_AsBinary(CASE WHEN c.inside THEN f.geom ELSE ST_Intersection(f.geom, s.geom) END)
             AS wkb, f.dim, NOT c.inside AS clipped
    FROM f, s CROSS JOIN LATERAL (SELECT ST_Covers(s.geom, f.geom) AS inside) c
    """
)


def area_around_feature(
    conn: Connection,
    kind: str,
    code: str,
    distance_m: float,
    rules: RiskSettings,
    service: bytes | None,
) -> Area:
    """Return the area within `distance_m` metres of a stored risk feature, clipped to the
    service area (`service_area`: a river runs on beyond the city)."""
    if not (math.isfinite(distance_m) and 0 <= distance_m <= rules.max_feature_distance_m):
        raise InvalidInput(f"distance_m must be within 0..{rules.max_feature_distance_m:g} metres")
    if service is None:
        raise _no_grids()
    row = conn.execute(
        _FEATURE_AREA, {"kind": kind, "code": code, "d": distance_m, "service": service}
    ).first()
    if row is None:
        raise NotFound(f"no {kind} feature with code {code!r} among the stored risk layers")
    if row.dim < 2 and distance_m == 0:
        raise InvalidInput(f"{kind} {code!r} is a line: give a distance_m above 0")
    shape = shapely.from_wkb(bytes(row.wkb))
    if shape.is_empty or shapely.area(shape) == 0:
        raise InvalidInput(
            f"{kind} {code!r} and {distance_m:g} m around it lie outside the service area"
        )
    area = check_area(shape, True, rules)
    area.notes.insert(0, f"within {distance_m:g} m of {kind} {code}")
    if row.clipped:
        area.notes.insert(1, "clipped to the service area (as near a grid as reports)")
    area.source = f"{kind}:{code}+{distance_m:g}m"[:64]
    return area


_AREA_GRIDS = """
    WITH q AS (SELECT ST_GeomFromWKB(:wkb, 4326) AS geom)
    SELECT g.code, g.name, g.district_code, g.area_m2,
           CASE WHEN ST_Covers(q.geom, g.geom) THEN g.area_m2
                ELSE ST_Area(ST_Intersection(g.geom, q.geom)::geography) END AS inside_m2
    FROM grids g, q
    WHERE g.kind = 'comprehensive' AND ST_Intersects(g.geom, q.geom)
"""


def _hazards_sql(scope: ReportScope) -> tuple[str, dict]:
    """The unresolved hazards `scope` may see in the area, per category; a masked theme is
    counted where it is shown (its grid's point), so a small area cannot find a house by it."""
    scoped, params = scope_condition(scope)
    inside = point_within(scope, "ST_Covers(q.geom, {pt})")
    sql = f"""
        WITH q AS (SELECT ST_GeomFromWKB(:wkb, 4326) AS geom)
        SELECT r.theme, r.category, count(*) AS n
        FROM reports r, q
        WHERE {inside} AND {ACTIVE} AND {scoped}
        GROUP BY 1, 2 ORDER BY n DESC, 1, 2
    """
    return sql, {**params, **masked_binds(scope)}


def _households_sql(who: Principal) -> tuple[str, dict]:
    """The households in the area, by relocation priority, with `mine`: within `who`'s scope
    (geo.risk.households), and `count_code`: the comprehensive grid they count for."""
    mine, params = households.scope_condition(who)
    sql = f"""
        WITH q AS (SELECT ST_GeomFromWKB(:wkb, 4326) AS geom)
        SELECT h.code, h.head_name, h.phone, h.address, h.members, h.over_60, h.oldest_age,
               h.living_alone, h.mobility_needs, h.contact_worker, h.grid_code,
               h.district_code, {VULNERABLE} AS vulnerable,
               round(ST_X(h.geom)::numeric, 7)::float8 AS lon,
               round(ST_Y(h.geom)::numeric, 7)::float8 AS lat,
               COALESCE((SELECT max(p.min_level) FROM risk_parts p
                         WHERE p.kind = 'flood_zone' AND ST_Covers(p.geom, h.geom)), 0)
                 AS zone_level,
               {mine} AS mine, {COMPREHENSIVE_OF_HOUSEHOLD} AS count_code
        FROM q JOIN households h ON ST_Covers(q.geom, h.geom)
        LEFT JOIN grids g ON g.code = h.grid_code
        ORDER BY h.living_alone DESC, h.mobility_needs DESC, h.oldest_age DESC NULLS LAST,
                 zone_level DESC, h.code
    """
    return sql, params


PERSONAL = ("head_name", "phone", "address", "lon", "lat")
# The relocation list's columns, after its priority; an empty list has them too.
RELOCATION = (
    "code", "head_name", "phone", "address", "members", "over_60", "oldest_age",
    "living_alone", "mobility_needs", "contact_worker", "grid_code", "district_code",
    "lon", "lat", "zone_level",
)  # fmt: skip
_WORKING = ("vulnerable", "mine", "count_code", "exact")  # the query's columns, not the answer's


def area_query(
    conn: Connection,
    area: Area,
    who: Principal,
    auth: AuthSettings,
    limit: int | None = None,
    export: bool = False,
) -> dict:
    """Return what lies in `area` as `who` may see it: grids with the share inside and their
    households, unresolved hazards by category, household counts and, for coordinators (their
    districts) and admins, the relocation list by priority (its first `limit`), whose read (or
    `export`) is audited with the people listed. Counts from 1 to k-1 that `who` has no right
    to are withheld (`null`, `suppressed: true`)."""
    wkb = shapely.to_wkb(area.geom)
    scope = report_scope(who, auth.sensitive_themes)
    grids = conn.execute(text(_AREA_GRIDS), {"wkb": wkb}).all()
    sql, params = _hazards_sql(scope)
    hazards = conn.execute(text(sql), {**params, "wkb": wkb}).all()
    sql, params = _households_sql(who)
    rows = conn.execute(text(sql), {**params, "wkb": wkb}).all()
    homes = pd.DataFrame([r._mapping for r in rows])
    if homes.empty:
        homes = pd.DataFrame(columns=[*RELOCATION, *_WORKING])
    # Exact for those with the right to the households: coordinators in their districts, admins.
    homes["exact"] = homes["mine"].astype(bool) & who.sees_relocation
    grid_rows, summary = _household_counts(grids, homes, auth.k_anonymity)
    out: dict = {
        "area_km2": round(_geodesic_km2(area.geom), 4),
        "notes": area.notes,
        "grids": grid_rows,
        "hazards": _hazard_counts(hazards, scope, auth.k_anonymity),
        "households": summary,
    }
    out.update(_relocation(conn, homes, who, area, limit, export))
    if not grid_rows:
        out["notes"].append("the area touches no grid")
    return out


_NONE = {**dict.fromkeys(COUNTS, 0), "exact": True}


def _counts(homes: pd.DataFrame, by: pd.Series) -> dict[str, dict]:
    """Return the household counts (COUNTS, and whether all are `exact`) per value of `by`:
    one groupby, not a pass per grid (2,700 grids: 20 ms instead of 1.5 s)."""
    if homes.empty:
        return {}
    vulnerable = homes["vulnerable"].astype(bool)
    parts = pd.DataFrame(
        {
            "by": by,
            "households": 1,
            "residents": homes["members"].astype(int),
            "over_60": homes["over_60"].astype(int),
            "living_alone": homes["living_alone"].astype(bool).astype(int),
            "mobility_needs": homes["mobility_needs"].astype(bool).astype(int),
            "vulnerable_households": vulnerable.astype(int),
            "vulnerable_residents": homes["members"].where(vulnerable, 0).astype(int),
            "exact": homes["exact"].astype(bool),
        }
    )
    summed = parts.groupby("by", dropna=True).agg({**dict.fromkeys(COUNTS, "sum"), "exact": "all"})
    return {
        str(key): {**{c: int(row[c]) for c in COUNTS}, "exact": bool(row["exact"])}
        for key, row in summed.iterrows()
    }


def _share(g: Row) -> float:
    return round(min(1.0, g.inside_m2 / g.area_m2), 4)


def _household_counts(grids: Sequence[Row], homes: pd.DataFrame, k: int) -> tuple[list[dict], dict]:
    """Return the grids the area covers part of, most covered first, with their households,
    and the counts of all the households in it; small counts withheld where not exact."""
    per_grid = _counts(homes, homes["count_code"])
    rows, exact = [], []
    for g in sorted(grids, key=lambda g: (-_share(g), g.code)):
        if g.inside_m2 <= 0:
            continue
        counts = dict(per_grid.get(g.code, _NONE))
        exact.append(counts.pop("exact"))
        rows.append(
            {
                "code": g.code,
                "name": g.name,
                "district_code": g.district_code,
                "share_inside": _share(g),
                "area_inside_km2": round(g.inside_m2 / 1e6, 4),
                "area_km2": round(g.area_m2 / 1e6, 4),
                **counts,
            }
        )
    whole = _counts(homes, pd.Series("all", index=homes.index)).get("all", dict(_NONE))
    total_exact = whole.pop("exact")
    households.withhold(rows, k, COUNTS, exact, whole, total_exact)
    return rows, whole


def _hazards_by_category(hazards: Sequence[Row]) -> list[dict]:
    """Return the unresolved hazards per category, with its labels."""
    by_cat = []
    for h in hazards:
        cat = taxonomy.category(h.theme, h.category)
        by_cat.append(
            {
                "theme": h.theme,
                "category": h.category,
                "label_zh": cat.zh if cat else h.category,
                "label_en": cat.en if cat else h.category,
                "count": int(h.n),
            }
        )
    return by_cat


def _hazard_counts(hazards: Sequence[Row], scope: ReportScope, k: int) -> dict:
    """Return the hazards' total and categories; those of the themes `scope` sees masked (they
    are about people) withheld from 1 to k-1, and listed last so their place tells nothing."""
    rows = _hazards_by_category(hazards)
    exact = [r["theme"] not in scope.masked_themes for r in rows]
    total = {"count": sum(r["count"] for r in rows)}
    households.withhold(rows, k, ("count",), exact, total, all(exact))
    rows.sort(key=lambda r: (r["count"] is None, -(r["count"] or 0), r["theme"], r["category"]))
    return {"total": total["count"], "suppressed": total["suppressed"], "by_category": rows}


def _relocation(
    conn: Connection,
    homes: pd.DataFrame,
    who: Principal,
    area: Area,
    limit: int | None,
    export: bool,
) -> dict:
    """Return the relocation list of `who`'s households for coordinators and admins (its first
    `limit`), its read or export audited with the people listed; for others, that it is
    withheld."""
    if not who.sees_relocation:
        return {
            "relocation": None,
            "relocation_withheld": (
                "households' names, phones and positions are shown to coordinators (their "
                "districts) and admins only"
            ),
        }
    listed = relocation_frame(homes[homes["mine"].astype(bool)])
    shown = listed if limit is None else listed.head(limit)
    people = int(shown["members"].sum()) if len(shown) else 0
    action = households.EXPORT if export else audit.PERSONAL_DATA_READ
    audit.record(conn, who, action, "area_query", area.label, people=people)
    out = {
        "relocation": shown.replace({np.nan: None}).to_dict("records"),
        "relocation_total": len(listed),
    }
    if len(listed) < len(homes):
        area.notes.append("households outside your districts are counted, not listed")
    return out


def relocation_frame(homes: pd.DataFrame) -> pd.DataFrame:
    """Return households in priority order (alone, mobility needs, age, zone level), numbered."""
    if homes.empty:
        return pd.DataFrame(columns=["priority", *RELOCATION])
    out = homes.drop(columns=[c for c in _WORKING if c in homes]).copy()
    out.insert(0, "priority", np.arange(1, len(out) + 1))
    out["oldest_age"] = out["oldest_age"].astype("Int64")
    return out.reset_index(drop=True)


def area_summary_frames(result: dict) -> dict[str, pd.DataFrame]:
    """Return the area result as sheets: grids, hazards, relocation (when shown)."""
    sheets = {
        "grids": pd.DataFrame(result["grids"]),
        "hazards": pd.DataFrame(result["hazards"]["by_category"]),
    }
    if result.get("relocation") is not None:
        sheets["relocation"] = pd.DataFrame(result["relocation"], columns=["priority", *RELOCATION])
    return sheets
