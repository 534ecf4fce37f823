"""Flood risk for coordinators: which grids are exposed, and what lies inside a drawn area.

Ranking score (0-100) of a comprehensive grid, a weighted sum of five parts, each 0..1
(weights from settings, `RISKGRID_RISK__*`, adding up to 1):

- exposure: the share of the grid inside flood zones, by level. With s_l the share inside zones
  of level l or higher (l = 1 low, 2 medium, 3 high) and m = min_level, exposure =
  (s_m + ... + s_3) / (4 - m): a grid wholly in a high zone scores 1, wholly in a low one 1/3.
- low_lying: the share of the grid in low-lying, waterlogging-prone land.
- proximity: 1 - d / buffer_m, at least 0, with d the distance in metres from the grid to the
  nearest river or reservoir (0 when it touches one; measured up to 10 km or buffer_m, None
  beyond).
- hazards: h / (h + hazards_half), h the unresolved flood reports in the grid (since `since`).
- vulnerable: v / (v + vulnerable_half), v the residents of vulnerable households (someone over
  60, living alone, or needing help to move).

Areas are geodesic (PostGIS geography on the WGS-84 ellipsoid), distances geodesic in metres.
Overlays read the subdivided, non-overlapping unions in `risk_parts`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson
import pandas as pd
import shapely
import shapely.geometry
from sqlalchemy import Connection, text

from geo import taxonomy
from geo.assignment import M_PER_DEG_MIN
from geo.coords import SourceCRS, to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.geometry import polygonal
from geo.hotspots import COMPREHENSIVE_OF, Versions, cached, grid_layer, versions
from geo.households import VULNERABLE, per_grid_sql
from geo.projection import grids_utm_srid
from geo.settings import RiskSettings

UNRESOLVED = "('" + "', '".join(taxonomy.ACTIVE_STATUSES) + "')"
# Distances to water are measured up to here (or buffer_m if larger); farther is reported as
# None: beyond any flood-season interest, and not worth measuring for every grid.
WATER_SEARCH_M = 10_000.0
PARTS = ("exposure", "low_lying", "proximity", "hazards", "vulnerable")


@dataclass(frozen=True)
class RankSpec:
    """What a ranking asks for."""

    theme: str = "flood"
    min_level: int = 1
    buffer_m: float | None = None  # None: the setting
    since: datetime | None = None
    district: str | None = None


def risk_versions(conn: Connection) -> tuple[Versions, int, int]:
    """Return what a risk answer depends on: grids and reports, risk layers, households."""
    row = conn.execute(
        text(
            "SELECT (SELECT last_value FROM risk_layers_data_version), "
            "(SELECT last_value FROM households_data_version)"
        )
    ).one()
    return versions(conn), int(row[0]), int(row[1])


_RANK_SQL = f"""
    WITH g AS (
      SELECT code, name, district_code, geom, area_m2 FROM grids
      WHERE kind = 'comprehensive' AND (CAST(:district AS text) IS NULL
                                        OR district_code = :district)
    ),
    ov AS (
      SELECT g.code, p.kind, p.min_level,
             sum(CASE WHEN ST_Covers(p.geom, g.geom) THEN g.area_m2
                      ELSE ST_Area(ST_Intersection(g.geom, p.geom)::geography) END) AS a
      FROM g JOIN risk_parts p ON ST_Intersects(g.geom, p.geom)
      WHERE p.kind IN ('flood_zone', 'low_lying')
      GROUP BY g.code, p.kind, p.min_level
    ),
    ex AS (
      SELECT code,
             sum(a) FILTER (WHERE kind = 'flood_zone' AND min_level = 1) AS z1,
             sum(a) FILTER (WHERE kind = 'flood_zone' AND min_level = 2) AS z2,
             sum(a) FILTER (WHERE kind = 'flood_zone' AND min_level = 3) AS z3,
             sum(a) FILTER (WHERE kind = 'low_lying' AND min_level = 1) AS low
      FROM ov GROUP BY code
    ),
    -- Distances in the grids' UTM zone (within 0.05 % of geodesic there, 40 times faster than
    -- geography), between pairs the grid index finds within the search distance.
    wm AS MATERIALIZED (
      SELECT id, geom, ST_Transform(geom, {{srid}}) AS gm FROM risk_parts
      WHERE kind IN ('river', 'reservoir') AND min_level = 1
    ),
    water AS (
      SELECT x.code, x.d FROM (
        SELECT g.code, min(ST_Distance(ST_Transform(g.geom, {{srid}}), wm.gm)) AS d
        FROM wm JOIN grids g ON ST_DWithin(g.geom, wm.geom, :search_deg)  -- index, not CTE
        WHERE g.kind = 'comprehensive'
        GROUP BY g.code
      ) x WHERE x.d <= :search_m
    ),
    haz AS (
      SELECT {COMPREHENSIVE_OF} AS code, count(*) AS n
      FROM reports r JOIN grids g ON g.code = r.grid_code
      WHERE r.theme = 'flood' AND r.status IN {UNRESOLVED}
        AND (CAST(:since AS timestamptz) IS NULL OR r.reported_at >= :since)
      GROUP BY 1
    ),
    hh AS ({per_grid_sql()})
    SELECT g.code, g.name, g.district_code, g.area_m2,
           COALESCE(ex.z1, 0) AS z1, COALESCE(ex.z2, 0) AS z2, COALESCE(ex.z3, 0) AS z3,
           COALESCE(ex.low, 0) AS low, water.d AS water_m, COALESCE(haz.n, 0) AS hazards,
           COALESCE(hh.households, 0) AS households, COALESCE(hh.residents, 0) AS residents,
           COALESCE(hh.over_60, 0) AS over_60, COALESCE(hh.living_alone, 0) AS living_alone,
           COALESCE(hh.mobility_needs, 0) AS mobility_needs,
           COALESCE(hh.vulnerable_households, 0) AS vulnerable_households,
           COALESCE(hh.vulnerable_residents, 0) AS vulnerable_residents
    FROM g LEFT JOIN ex ON ex.code = g.code LEFT JOIN water ON water.code = g.code
    LEFT JOIN haz ON haz.code = g.code LEFT JOIN hh ON hh.code = g.code
"""


def _check_spec(spec: RankSpec, rules: RiskSettings) -> float:
    if spec.theme != "flood":
        raise InvalidInput(
            f"theme {spec.theme!r} has no risk layers yet; the ranking covers theme=flood"
        )
    if spec.min_level not in (1, 2, 3):
        raise InvalidInput("min_level must be 1 (low), 2 (medium) or 3 (high)")
    buffer_m = rules.buffer_m if spec.buffer_m is None else spec.buffer_m
    if not (math.isfinite(buffer_m) and 0 < buffer_m <= 50_000):
        raise InvalidInput("buffer_m must be a distance in metres within 0..50000")
    return buffer_m


def ranking(conn: Connection, spec: RankSpec, rules: RiskSettings) -> pd.DataFrame:
    """Return every comprehensive grid (of a district) with its score parts, highest first."""
    buffer_m = _check_spec(spec, rules)
    key = ("risk-rank", risk_versions(conn), spec, buffer_m, rules.model_dump_json())
    return cached(key, lambda: _rank(conn, spec, buffer_m, rules))[0].copy()


def _rank(conn: Connection, spec: RankSpec, buffer_m: float, rules: RiskSettings) -> pd.DataFrame:
    sql = _RANK_SQL.replace("{srid}", str(grids_utm_srid(conn)))
    search_m = max(WATER_SEARCH_M, buffer_m)
    params = {
        "district": spec.district,
        "since": spec.since,
        "search_m": search_m,
        "search_deg": search_m / M_PER_DEG_MIN,
    }
    rows = conn.execute(text(sql), params).all()
    if not rows and spec.district:
        raise NotFound(f"no comprehensive grids in district {spec.district!r}")
    f = pd.DataFrame([r._mapping for r in rows])
    if f.empty:
        raise InvalidInput("no comprehensive grids are loaded: import boundaries first")
    area = f["area_m2"].to_numpy(dtype=float)
    share = {lv: np.clip(f[f"z{lv}"].to_numpy(dtype=float) / area, 0, 1) for lv in (1, 2, 3)}
    m = spec.min_level
    exposure = sum(share[lv] for lv in range(m, 4)) / (4 - m)
    low = np.clip(f["low"].to_numpy(dtype=float) / area, 0, 1)
    water = f["water_m"].to_numpy(dtype=float)  # NaN when there is no water layer
    proximity = np.where(np.isnan(water), 0.0, np.clip(1 - water / buffer_m, 0, 1))
    h = f["hazards"].to_numpy(dtype=float)
    v = f["vulnerable_residents"].to_numpy(dtype=float)
    parts = {
        "exposure": exposure,
        "low_lying": low,
        "proximity": proximity,
        "hazards": h / (h + rules.hazards_half),
        "vulnerable": v / (v + rules.vulnerable_half),
    }
    score = 100 * sum(getattr(rules, p) * parts[p] for p in PARTS)
    out = pd.DataFrame(
        {
            "code": f["code"],
            "name": f["name"],
            "district_code": f["district_code"],
            "score": np.round(score, 2),
            **{f"{p}_part": np.round(parts[p], 6) for p in PARTS},
            "area_km2": np.round(area / 1e6, 6),
            "flood_share_low_plus": np.round(share[1], 6),
            "flood_share_medium_plus": np.round(share[2], 6),
            "flood_share_high": np.round(share[3], 6),
            "low_lying_share": np.round(low, 6),
            "water_distance_m": np.round(water, 1),
            "open_flood_hazards": f["hazards"].astype(int),
            "households": f["households"].astype(int),
            "residents": f["residents"].astype(int),
            "over_60": f["over_60"].astype(int),
            "living_alone": f["living_alone"].astype(int),
            "mobility_needs": f["mobility_needs"].astype(int),
            "vulnerable_households": f["vulnerable_households"].astype(int),
            "vulnerable_residents": f["vulnerable_residents"].astype(int),
        }
    )
    out = out.sort_values(["score", "code"], ascending=[False, True], kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


def method(spec: RankSpec, rules: RiskSettings) -> dict:
    """Return how the score was computed: the parts, weights and parameters."""
    return {
        "score": "100 x sum(weight x part), each part 0..1",
        "weights": {p: getattr(rules, p) for p in PARTS},
        "min_level": spec.min_level,
        "buffer_m": rules.buffer_m if spec.buffer_m is None else spec.buffer_m,
        "hazards_half": rules.hazards_half,
        "vulnerable_half": rules.vulnerable_half,
        "since": spec.since.isoformat() if spec.since else None,
        "hazards": "unresolved flood reports (reported, dispatched, in progress)",
        "vulnerable": "residents of households with someone over 60, living alone, or "
        "needing help to move",
        "areas": "geodesic (WGS-84 ellipsoid)",
    }


def ranking_geojson(conn: Connection, frame: pd.DataFrame, extra: dict) -> bytes:
    """Return ranked grids as GeoJSON bytes (geometry from the cached grid layer)."""
    layer = grid_layer(conn, versions(conn))
    records = frame.replace({np.nan: None}).to_dict("records")
    feats = [
        b'{"type":"Feature","id":'
        + orjson.dumps(rec["code"])
        + b',"geometry":'
        + layer.geometry_json[layer.index[rec["code"]]].encode()
        + b',"properties":'
        + orjson.dumps(rec, option=orjson.OPT_SERIALIZE_NUMPY)
        + b"}"
        for rec in records
    ]
    head = orjson.dumps({"type": "FeatureCollection", **extra})[:-1]
    return head + b',"features":[' + b",".join(feats) + b"]}"


def to_xlsx(sheets: dict[str, pd.DataFrame]) -> bytes:
    """Return an Excel workbook with one sheet per frame."""
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        for name, frame in sheets.items():
            frame.to_excel(xl, sheet_name=name[:31], index=False)
    return buf.getvalue()


def to_csv(frame: pd.DataFrame) -> bytes:
    """Return CSV bytes (UTF-8 with BOM, so Excel shows Chinese text)."""
    return frame.to_csv(index=False).encode("utf-8-sig")


# ---- ad-hoc area queries ---------------------------------------------------------------


@dataclass
class Area:
    """A checked query area in WGS-84 and what was done to it."""

    geom: shapely.MultiPolygon
    notes: list[str]


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
    notes: list[str] = []
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        if not repair:
            raise InvalidInput(
                f"the polygon is invalid ({reason}); redraw it without crossing edges, or send "
                '"repair": true to have it repaired'
            )
        geom = shapely.make_valid(geom)
        notes.append(f"the polygon was invalid ({reason}) and was repaired")
    poly = polygonal(geom)
    if poly is None or poly.area == 0:
        raise InvalidInput("the polygon has no area")
    from pyproj import Geod

    km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(poly)[0]) / 1e6
    if km2 > rules.max_query_km2:
        raise InvalidInput(
            f"the area is {km2:,.0f} km², more than {rules.max_query_km2:,.0f} km²; draw a "
            "smaller one or rank the grids with GET /api/v1/risk/grids"
        )
    return Area(poly, notes)


def area_around_feature(
    conn: Connection, kind: str, code: str, distance_m: float, rules: RiskSettings
) -> Area:
    """Return the area within `distance_m` metres of a stored risk feature."""
    if not (math.isfinite(distance_m) and 0 <= distance_m <= rules.max_feature_distance_m):
        raise InvalidInput(f"distance_m must be within 0..{rules.max_feature_distance_m:g} metres")
    row = conn.execute(
        text(
            "SELECT ST_AsBinary(CASE WHEN :d > 0 THEN ST_Buffer(geom::geography, :d)::geometry "
            "ELSE geom END) AS wkb, ST_Dimension(geom) AS dim "
            "FROM risk_layers WHERE kind = :kind AND code = :code"
        ),
        {"kind": kind, "code": code, "d": distance_m},
    ).first()
    if row is None:
        raise NotFound(f"no {kind} feature with code {code!r}; GET /api/v1/risk/layers lists them")
    if row.dim < 2 and distance_m == 0:
        raise InvalidInput(f"{kind} {code!r} is a line: give a distance_m above 0")
    area = check_area(shapely.from_wkb(bytes(row.wkb)), True, rules)
    area.notes.insert(0, f"within {distance_m:g} m of {kind} {code}")
    return area


_AREA_GRIDS = """
    WITH q AS (SELECT ST_GeomFromWKB(:wkb, 4326) AS geom)
    SELECT g.code, g.name, g.district_code, g.area_m2,
           CASE WHEN ST_Covers(q.geom, g.geom) THEN g.area_m2
                ELSE ST_Area(ST_Intersection(g.geom, q.geom)::geography) END AS inside_m2
    FROM grids g, q
    WHERE g.kind = 'comprehensive' AND ST_Intersects(g.geom, q.geom)
"""
_AREA_HAZARDS = f"""
    WITH q AS (SELECT ST_GeomFromWKB(:wkb, 4326) AS geom)
    SELECT r.theme, r.category, count(*) AS n
    FROM reports r, q
    WHERE ST_Covers(q.geom, r.geom) AND r.status IN {UNRESOLVED}
    GROUP BY 1, 2 ORDER BY n DESC, 1, 2
"""
_AREA_HOUSEHOLDS = f"""
    WITH q AS (SELECT ST_GeomFromWKB(:wkb, 4326) AS geom)
    SELECT h.code, h.head_name, h.phone, h.address, h.members, h.over_60, h.oldest_age,
           h.living_alone, h.mobility_needs, h.contact_worker, h.grid_code,
           {VULNERABLE} AS vulnerable,
           round(ST_X(h.geom)::numeric, 7)::float8 AS lon,
           round(ST_Y(h.geom)::numeric, 7)::float8 AS lat,
           COALESCE((SELECT max(p.min_level) FROM risk_parts p
                     WHERE p.kind = 'flood_zone' AND ST_Covers(p.geom, h.geom)), 0)
             AS zone_level
    FROM households h, q
    WHERE ST_Covers(q.geom, h.geom)
    ORDER BY h.living_alone DESC, h.mobility_needs DESC, h.oldest_age DESC NULLS LAST,
             zone_level DESC, h.code
"""
PERSONAL = ("head_name", "phone", "address", "lon", "lat")


def area_query(conn: Connection, area: Area, personal: bool) -> dict:
    """Return what lies in `area`: grids with the share inside, unresolved hazards by category,
    household counts and, for `personal` callers, the relocation list by priority."""
    wkb = shapely.to_wkb(area.geom)
    grids = conn.execute(text(_AREA_GRIDS), {"wkb": wkb}).all()
    hazards = conn.execute(text(_AREA_HAZARDS), {"wkb": wkb}).all()
    homes = pd.DataFrame(
        [r._mapping for r in conn.execute(text(_AREA_HOUSEHOLDS), {"wkb": wkb}).all()]
    )
    per_grid: dict[str, dict] = {}
    if not homes.empty:
        grouped = homes.groupby("grid_code", dropna=True)
        for code, part in grouped:
            per_grid[str(code)] = {
                "households": len(part),
                "residents": int(part["members"].sum()),
                "vulnerable_households": int(part["vulnerable"].sum()),
            }
    grid_rows = sorted(
        (
            {
                "code": g.code,
                "name": g.name,
                "district_code": g.district_code,
                "share_inside": round(min(1.0, g.inside_m2 / g.area_m2), 4),
                "area_inside_km2": round(g.inside_m2 / 1e6, 4),
                "area_km2": round(g.area_m2 / 1e6, 4),
                **per_grid.get(
                    g.code, {"households": 0, "residents": 0, "vulnerable_households": 0}
                ),
            }
            for g in grids
            if g.inside_m2 > 0
        ),
        key=lambda r: (-r["share_inside"], r["code"]),
    )
    from pyproj import Geod

    km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(area.geom)[0]) / 1e6
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
    summary = _household_summary(homes)
    out: dict = {
        "area_km2": round(km2, 4),
        "notes": area.notes,
        "grids": grid_rows,
        "hazards": {"total": sum(c["count"] for c in by_cat), "by_category": by_cat},
        "households": summary,
    }
    relocation = relocation_frame(homes)
    if personal:
        out["relocation"] = relocation.replace({np.nan: None}).to_dict("records")
    else:
        out["relocation"] = None
        out["relocation_withheld"] = (
            f"{len(relocation)} household(s): names, phones and positions are shown to "
            "coordinators and admins only"
        )
    if not grid_rows:
        out["notes"].append("the area touches no grid")
    return out


def _household_summary(homes: pd.DataFrame) -> dict:
    if homes.empty:
        return dict.fromkeys(
            (
                "households",
                "residents",
                "over_60",
                "living_alone",
                "mobility_needs",
                "vulnerable_households",
                "vulnerable_residents",
            ),
            0,
        )
    vul = homes["vulnerable"].astype(bool)
    return {
        "households": len(homes),
        "residents": int(homes["members"].sum()),
        "over_60": int(homes["over_60"].sum()),
        "living_alone": int(homes["living_alone"].sum()),
        "mobility_needs": int(homes["mobility_needs"].sum()),
        "vulnerable_households": int(vul.sum()),
        "vulnerable_residents": int(homes.loc[vul, "members"].sum()),
    }


def relocation_frame(homes: pd.DataFrame) -> pd.DataFrame:
    """Return households in priority order (alone, mobility needs, age, zone level), numbered."""
    if homes.empty:
        return pd.DataFrame(columns=["priority", "code"])
    out = homes.drop(columns=["vulnerable"]).copy()
    out.insert(0, "priority", np.arange(1, len(out) + 1))
    out["oldest_age"] = out["oldest_age"].astype("Int64")
    return out


def area_summary_frames(result: dict) -> dict[str, pd.DataFrame]:
    """Return the area result as sheets: grids, hazards, relocation (when shown)."""
    sheets = {
        "grids": pd.DataFrame(result["grids"]),
        "hazards": pd.DataFrame(result["hazards"]["by_category"]),
    }
    if result.get("relocation") is not None:
        sheets["relocation"] = pd.DataFrame(result["relocation"])
    return sheets
