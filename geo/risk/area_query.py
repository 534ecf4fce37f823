"""What lies inside a drawn area: grids, unresolved hazards, households, the relocation list."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from sqlalchemy import Connection, Row, text

from geo.coords import SourceCRS, to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.geometry import repair_polygonal
from geo.reports import taxonomy
from geo.reports.fragments import ACTIVE
from geo.risk.households import VULNERABLE
from geo.settings import RiskSettings


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
    km2 = _geodesic_km2(poly)
    if km2 > rules.max_query_km2:
        raise InvalidInput(
            f"the area is {km2:,.0f} km², more than {rules.max_query_km2:,.0f} km²; draw a "
            "smaller one, or rank the grids instead"
        )
    return Area(poly, notes)


def _geodesic_km2(geom: shapely.Geometry) -> float:
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0]) / 1e6


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
        raise NotFound(f"no {kind} feature with code {code!r} among the stored risk layers")
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
    WHERE ST_Covers(q.geom, r.geom) AND {ACTIVE}
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
    grid_rows = _grid_rows(grids, homes)
    by_cat = _hazards_by_category(hazards)
    out: dict = {
        "area_km2": round(_geodesic_km2(area.geom), 4),
        "notes": area.notes,
        "grids": grid_rows,
        "hazards": {"total": sum(c["count"] for c in by_cat), "by_category": by_cat},
        "households": _household_summary(homes),
    }
    out.update(_relocation(homes, personal))
    if not grid_rows:
        out["notes"].append("the area touches no grid")
    return out


_NO_HOUSEHOLDS = {"households": 0, "residents": 0, "vulnerable_households": 0}


def _grid_rows(grids: Sequence[Row], homes: pd.DataFrame) -> list[dict]:
    """Return the grids the area covers part of, most covered first, with their households."""
    per_grid: dict[str, dict] = {}
    if not homes.empty:
        for code, part in homes.groupby("grid_code", dropna=True):
            per_grid[str(code)] = {
                "households": len(part),
                "residents": int(part["members"].sum()),
                "vulnerable_households": int(part["vulnerable"].sum()),
            }
    rows = [
        {
            "code": g.code,
            "name": g.name,
            "district_code": g.district_code,
            "share_inside": round(min(1.0, g.inside_m2 / g.area_m2), 4),
            "area_inside_km2": round(g.inside_m2 / 1e6, 4),
            "area_km2": round(g.area_m2 / 1e6, 4),
            **per_grid.get(g.code, _NO_HOUSEHOLDS),
        }
        for g in grids
        if g.inside_m2 > 0
    ]
    return sorted(rows, key=lambda r: (-r["share_inside"], r["code"]))


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


def _relocation(homes: pd.DataFrame, personal: bool) -> dict:
    """Return the relocation list for `personal` callers, else how many it holds."""
    relocation = relocation_frame(homes)
    if personal:
        return {"relocation": relocation.replace({np.nan: None}).to_dict("records")}
    return {
        "relocation": None,
        "relocation_withheld": (
            f"{len(relocation)} household(s): names, phones and positions are shown to "
            "coordinators and admins only"
        ),
    }


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
