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

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geo.cache import Versions, cached
from geo.errors import InvalidInput, NotFound
from geo.geojson import feature_collection
from geo.grids.assignment import M_PER_DEG_MIN
from geo.grids.layer import COMPREHENSIVE_OF, grid_layer
from geo.identity.principal import Principal
from geo.projection import grids_utm_srid
from geo.reports.fragments import ACTIVE
from geo.risk.households import COUNTS, per_grid_sql
from geo.settings import RiskSettings
from geo.vocabulary import LEVELLED_RISK_KINDS, WATER_KINDS, RiskKind, Role, sql_list

FLOOD, LOW = RiskKind.FLOOD_ZONE.value, RiskKind.LOW_LYING.value
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


def risk_versions(conn: Connection, v: Versions) -> tuple[Versions, int, int]:
    """Return what a risk answer depends on: grids and reports, risk layers, households."""
    row = conn.execute(
        text(
            "SELECT (SELECT last_value FROM risk_layers_data_version), "
            "(SELECT last_value FROM households_data_version)"
        )
    ).one()
    return v, int(row[0]), int(row[1])


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
      WHERE p.kind IN {sql_list(LEVELLED_RISK_KINDS)}
      GROUP BY g.code, p.kind, p.min_level
    ),
    ex AS (
      SELECT code,
             sum(a) FILTER (WHERE kind = '{FLOOD}' AND min_level = 1) AS z1,
             sum(a) FILTER (WHERE kind = '{FLOOD}' AND min_level = 2) AS z2,
             sum(a) FILTER (WHERE kind = '{FLOOD}' AND min_level = 3) AS z3,
             sum(a) FILTER (WHERE kind = '{LOW}' AND min_level = 1) AS low
      FROM ov GROUP BY code
    ),
    -- Distances in the grids' UTM zone (within 0.05 % of geodesic there, 40 times faster than
    -- geography), between pairs the grid index finds within the search distance.
    wm AS MATERIALIZED (
      SELECT id, geom, ST_Transform(geom, {{srid}}) AS gm FROM risk_parts
      WHERE kind IN {sql_list(WATER_KINDS)} AND min_level = 1
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
      WHERE r.theme = 'flood' AND {ACTIVE}
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
            f"theme {spec.theme!r} has no risk layers yet; only the flood theme is ranked"
        )
    if spec.min_level not in (1, 2, 3):
        raise InvalidInput("min_level must be 1 (low), 2 (medium) or 3 (high)")
    buffer_m = rules.buffer_m if spec.buffer_m is None else spec.buffer_m
    if not (math.isfinite(buffer_m) and 0 < buffer_m <= 50_000):
        raise InvalidInput("buffer_m must be a distance in metres within 0..50000")
    return buffer_m


def ranking(conn: Connection, spec: RankSpec, rules: RiskSettings, v: Versions) -> pd.DataFrame:
    """Return every comprehensive grid (of a district) with its score parts, highest first."""
    buffer_m = _check_spec(spec, rules)
    key = ("risk-rank", risk_versions(conn, v), spec, buffer_m, rules.model_dump_json())
    srid = grids_utm_srid(conn, v)
    return cached(key, lambda: _rank(conn, spec, buffer_m, rules, srid))[0].copy()


def _rank(
    conn: Connection, spec: RankSpec, buffer_m: float, rules: RiskSettings, srid: int
) -> pd.DataFrame:
    sql = _RANK_SQL.replace("{srid}", str(srid))
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


def exact_grids(frame: pd.DataFrame, who: Principal) -> np.ndarray:
    """Return which ranked grids `who` may see exact household counts of: an admin's all, a
    coordinator's districts (all when unbound), a worker's grids, nobody else's."""
    if who.role == Role.ADMIN or (who.role == Role.COORDINATOR and not who.districts):
        return np.ones(len(frame), dtype=bool)
    if who.role == Role.COORDINATOR:
        return frame["district_code"].isin(who.districts).to_numpy()
    if who.role == Role.WORKER:
        return frame["code"].isin(who.grids).to_numpy()
    return np.zeros(len(frame), dtype=bool)


def withhold_households(
    frame: pd.DataFrame, exact: np.ndarray, k: int, rules: RiskSettings
) -> pd.DataFrame:
    """Return the ranking with household counts from 1 to k-1 withheld where not `exact`
    (all of a grid's counts when its households are), each row with `suppressed`.

    The vulnerable part (and so the score) of such a grid is computed from k residents, not
    the true few: the part and the score would otherwise give the count back
    (v = half * p / (1 - p)). The grids are ranked again.
    """
    if exact.all():  # an admin's, or a city-wide coordinator's: nothing to withhold
        return frame.assign(suppressed=False)
    out = frame.copy()
    small = {c: ~exact & (out[c] > 0) & (out[c] < k) for c in COUNTS}
    whole = small["households"]
    hidden = np.zeros(len(out), dtype=bool)
    for c in COUNTS:
        gone = (small[c] | (whole & ~exact)).to_numpy()
        hidden |= gone
        out[c] = out[c].astype(object).where(~gone, None)
    v = frame["vulnerable_residents"].to_numpy(dtype=float)
    v_shown = np.where(small["vulnerable_residents"].to_numpy(), float(k), v)
    part = v_shown / (v_shown + rules.vulnerable_half)
    out["score"] = np.round(
        out["score"] + 100 * rules.vulnerable * (part - out["vulnerable_part"]), 2
    )
    out["vulnerable_part"] = np.round(part, 6)
    out["suppressed"] = hidden
    out = out.sort_values(["score", "code"], ascending=[False, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
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


def ranking_geojson(conn: Connection, frame: pd.DataFrame, extra: dict, v: Versions) -> bytes:
    """Return ranked grids as GeoJSON bytes (geometry from the cached grid layer)."""
    layer = grid_layer(conn, v)
    records = frame.replace({np.nan: None}).to_dict("records")
    return feature_collection(
        ((r["code"], layer.geometry_json[layer.index[r["code"]]], r) for r in records), extra
    )
