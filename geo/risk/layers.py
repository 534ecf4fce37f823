"""Risk layers in PostGIS: flood zones, rivers, reservoirs and low-lying land.

Each import replaces or adds the features of one kind (keyed by code), then rebuilds that kind's
analysis parts: the union of its features at or above each level, subdivided, so that overlays
of 5,000 grids read small non-overlapping pieces through a GiST index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geo.db.copy import copy_rows
from geo.db.privileges import refresh_statistics

KINDS = ("flood_zone", "river", "reservoir", "low_lying")
LEVELLED = ("flood_zone", "low_lying")  # kinds whose features carry a level 1-3
WATER = ("river", "reservoir")  # what "distance to water" measures to
LEVEL_NAMES = {1: "low", 2: "medium", 3: "high"}
PART_VERTICES = 128  # ST_Subdivide's limit: small pieces make overlays and KNN cheap


@dataclass
class StoreResult:
    """What an import of one kind changed."""

    kind: str
    added: int
    changed: int
    unchanged: int
    removed: int
    parts: int


# code, name, level, return period in years, attributes, WKB
LayerRow = tuple[str, str, int | None, int | None, dict[str, Any], bytes]
_STAGE_COLUMNS = ("code", "name", "level", "return_period_years", "attributes", "wkb")
_ABSENT = "t.kind = :kind AND NOT EXISTS (SELECT 1 FROM stage_risk s WHERE s.code = t.code)"


def store(
    conn: Connection,
    kind: str,
    rows: Sequence[LayerRow],
    source: str,
    sha256: str,
    prune: bool = False,
) -> StoreResult:
    """Upsert features (code, name, level, return period, attributes, WKB) of one kind.

    With `prune` the file is the whole layer: stored features of the kind it lacks are
    deleted. Runs in the caller's transaction; the analysis parts are rebuilt when anything
    changed.
    """
    _stage(conn, rows)
    params = {"kind": kind, "source": source, "sha": sha256}
    added, changed = _compare(conn, params)
    absent = conn.execute(
        text(f"SELECT count(*) FROM risk_layers t WHERE {_ABSENT}"), params
    ).scalar_one()
    removed = absent if prune else 0
    result = StoreResult(kind, added, changed, len(rows) - added - changed, removed, 0)
    if not (added or changed or removed):
        result.parts = count_parts(conn, kind)
        return result
    conn.execute(text(_UPSERT), params)
    if removed:
        conn.execute(text(f"DELETE FROM risk_layers t WHERE {_ABSENT}"), params)
    result.parts = rebuild_parts(conn, kind)
    return result


def _stage(conn: Connection, rows: Sequence[LayerRow]) -> None:
    """COPY `rows` into the temporary table `stage_risk`."""
    conn.execute(
        text(
            "CREATE TEMP TABLE stage_risk (code text, name text, level smallint, "
            "return_period_years integer, attributes jsonb, wkb bytea) ON COMMIT DROP"
        )
    )
    values = (
        (code, name, level, period, json.dumps(attrs, ensure_ascii=False), wkb)
        for code, name, level, period, attrs, wkb in rows
    )
    copy_rows(conn, "stage_risk", _STAGE_COLUMNS, values)


def _compare(conn: Connection, params: dict[str, str]) -> tuple[int, int]:
    """Return how many staged features are new to the kind and how many changed."""
    diff = conn.execute(
        text(
            """
            WITH s AS (SELECT code, name, level, return_period_years, attributes,
                              ST_GeomFromWKB(wkb, 4326) AS geom FROM stage_risk)
            SELECT count(*) FILTER (WHERE t.id IS NULL) AS added,
                   count(*) FILTER (WHERE t.id IS NOT NULL AND (
                     NOT ST_OrderingEquals(t.geom, s.geom) OR t.name IS DISTINCT FROM s.name
                     OR t.level IS DISTINCT FROM s.level
                     OR t.return_period_years IS DISTINCT FROM s.return_period_years
                     OR t.attributes IS DISTINCT FROM s.attributes)) AS changed
            FROM s LEFT JOIN risk_layers t ON t.kind = :kind AND t.code = s.code
            """
        ),
        params,
    ).one()
    return int(diff.added), int(diff.changed)


_UPSERT = """
    INSERT INTO risk_layers (kind, code, name, level, return_period_years, attributes,
                             geom, source, sha256)
    SELECT :kind, code, name, level, return_period_years, attributes,
           ST_GeomFromWKB(wkb, 4326), :source, :sha FROM stage_risk
    ON CONFLICT (kind, code) DO UPDATE SET
      name = EXCLUDED.name, level = EXCLUDED.level,
      return_period_years = EXCLUDED.return_period_years,
      attributes = EXCLUDED.attributes, geom = EXCLUDED.geom,
      source = EXCLUDED.source, sha256 = EXCLUDED.sha256, imported_at = now()
    WHERE NOT ST_OrderingEquals(risk_layers.geom, EXCLUDED.geom)
       OR (risk_layers.name, risk_layers.level, risk_layers.return_period_years,
           risk_layers.attributes)
          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level,
                            EXCLUDED.return_period_years, EXCLUDED.attributes)
"""


def rebuild_parts(conn: Connection, kind: str) -> int:
    """Rebuild the analysis parts of one kind; return how many pieces there are now."""
    conn.execute(text("DELETE FROM risk_parts WHERE kind = :kind"), {"kind": kind})
    # Unions per level threshold (zones at or above it) and per dimension (a river may come
    # as lines and as polygons; a union of both would be a collection Subdivide refuses).
    conn.execute(
        text(
            f"""
            INSERT INTO risk_parts (kind, min_level, geom)
            SELECT :kind, u.lv, ST_Subdivide(u.geom, {PART_VERTICES})
            FROM (
              SELECT l.lv, ST_Union(r.geom) AS geom
              FROM generate_series(1, 3) AS l(lv)
              JOIN risk_layers r ON r.kind = :kind AND COALESCE(r.level, 1) >= l.lv
              GROUP BY l.lv, ST_Dimension(r.geom)
            ) u
            """
        ),
        {"kind": kind},
    )
    refresh_statistics(conn, "risk_parts")
    return count_parts(conn, kind)


def count_parts(conn: Connection, kind: str) -> int:
    """Return the number of analysis pieces of one kind."""
    return int(
        conn.execute(
            text("SELECT count(*) FROM risk_parts WHERE kind = :kind"), {"kind": kind}
        ).scalar_one()
    )


def summary(conn: Connection) -> list[dict]:
    """Return per kind and level: features, area in km² (polygons) and length in km (lines)."""
    rows = conn.execute(
        text(
            """
            SELECT kind, level, count(*) AS n,
                   round((sum(ST_Area(geom::geography)) / 1e6)::numeric, 3) AS area_km2,
                   round((sum(ST_Length(geom::geography)) / 1e3)::numeric, 3) AS length_km
            FROM risk_layers GROUP BY kind, level ORDER BY kind, level NULLS FIRST
            """
        )
    ).all()
    return [
        {
            "kind": r.kind,
            "level": r.level,
            "features": int(r.n),
            "area_km2": float(r.area_km2),
            "length_km": float(r.length_km),
        }
        for r in rows
    ]


def geojson(conn: Connection, kind: str | None = None, simplify_deg: float = 0.0) -> bytes:
    """Return the stored risk features (all kinds, or one) as a GeoJSON FeatureCollection.

    `simplify_deg` thins the outlines for display (topology kept); 0 returns them as stored.
    """
    where = "WHERE kind = :kind" if kind else ""
    return (
        conn.execute(
            text(
                f"""
            SELECT json_build_object('type', 'FeatureCollection', 'features',
              COALESCE(json_agg(json_build_object(
                'type', 'Feature', 'id', kind || ':' || code,
                'geometry', ST_AsGeoJSON(
                  CASE WHEN :tol > 0 THEN ST_SimplifyPreserveTopology(geom, :tol) ELSE geom END,
                  6)::json,
                'properties', json_build_object(
                  'kind', kind, 'code', code, 'name', name, 'level', level,
                  'return_period_years', return_period_years)
              ) ORDER BY kind, level NULLS FIRST, code), '[]'::json))::text
            FROM risk_layers {where}
            """
            ),
            {"kind": kind, "tol": simplify_deg},
        )
        .scalar_one()
        .encode()
    )
