"""Queries on the administrative hierarchy (city → district → street → community)."""

from __future__ import annotations

import geopandas as gpd
import shapely
from sqlalchemy import Connection, text

from geo.errors import NotFound


def outlines(conn: Connection, level: str) -> gpd.GeoDataFrame:
    """Return the code and outline (EPSG:4326) of every area at `level`."""
    rows = conn.execute(
        text("SELECT code, ST_AsBinary(geom) AS wkb FROM areas WHERE level = :level ORDER BY code"),
        {"level": level},
    ).all()
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return gpd.GeoDataFrame({"code": [r.code for r in rows]}, geometry=list(geoms), crs=4326)


_TREE_SQL = """
SELECT a.code, a.name, a.level, a.parent_code, a.population,
       (SELECT count(*) FROM grids g WHERE g.community_code = a.code) AS grids
FROM areas a ORDER BY a.code
"""


def tree(conn: Connection) -> list[dict]:
    """Return the area hierarchy as nested dicts (no geometry), roots first."""
    nodes: dict[str, dict] = {}
    for r in conn.execute(text(_TREE_SQL)).mappings():
        nodes[r["code"]] = {**r, "children": []}
    roots: list[dict] = []
    for node in nodes.values():
        parent = nodes.get(node["parent_code"]) if node["parent_code"] else None
        (parent["children"] if parent else roots).append(node)

    def roll_up(node: dict) -> int:
        # Grid counts sum upwards so a district shows all the grids under it.
        node["grids"] = int(node["grids"]) + sum(roll_up(c) for c in node["children"])
        return node["grids"]

    for root in roots:
        roll_up(root)
    return roots


def feature_json(conn: Connection, code: str) -> str:
    """Return one area as a GeoJSON Feature string, with its children's codes."""
    row = conn.execute(
        text(
            """
            SELECT json_build_object(
              'type', 'Feature', 'id', a.code,
              'geometry', ST_AsGeoJSON(a.geom, 7)::json,
              'properties', json_build_object(
                 'code', a.code, 'name', a.name, 'level', a.level,
                 'parent_code', a.parent_code, 'population', a.population,
                 'children', COALESCE((SELECT json_agg(c.code ORDER BY c.code)
                                       FROM areas c WHERE c.parent_code = a.code), '[]'::json))
            )::text
            FROM areas a WHERE a.code = :code
            """
        ),
        {"code": code},
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no area with code {code!r} among the stored areas")
    return str(row)
