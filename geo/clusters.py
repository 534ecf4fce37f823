"""Point patterns of reports in metres: DBSCAN clusters and hexagon bins (set-based PostGIS)."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import Connection, text

from geo.errors import InvalidInput
from geo.hotspots import cached, versions
from geo.projection import grids_utm_srid
from geo.report_queries import ReportFilter, where_clause

MAX_POINTS = 250_000  # DBSCAN over more is minutes, not seconds: narrow the query


def _cells(extra: str) -> str:
    """The hexagon of each point of `pts(id, g[, t])` (a point on an edge goes to one)."""
    return f"""cell AS (
              SELECT DISTINCT ON (p.id) {extra} h.i, h.j
              FROM pts p CROSS JOIN LATERAL ST_HexagonGrid(:size, p.g) h
              WHERE ST_Intersects(h.geom, p.g)
              ORDER BY p.id, h.i, h.j
            )"""


def _count(conn: Connection, where: str, params: dict) -> int:
    return int(
        conn.execute(text(f"SELECT count(*) FROM reports r WHERE {where}"), params).scalar_one()
    )


def dbscan(conn: Connection, f: ReportFilter, eps_m: float, min_points: int) -> dict:
    """Return DBSCAN clusters as a FeatureCollection, cached per query and data version."""
    return cached(
        ("dbscan", f, eps_m, min_points, versions(conn)),
        lambda: _dbscan(conn, f, eps_m, min_points),
    )[0]


def hexbins(conn: Connection, f: ReportFilter, size_m: float) -> dict:
    """Return report counts on a hexagon grid, cached per query and data version."""
    return cached(("hexbins", f, size_m, versions(conn)), lambda: _hexbins(conn, f, size_m))[0]


def _dbscan(conn: Connection, f: ReportFilter, eps_m: float, min_points: int) -> dict:
    """Return DBSCAN clusters (eps in metres, in the grids' UTM zone) as a FeatureCollection.

    Each cluster is the convex hull of its reports buffered by eps/2, with its count, dominant
    category and the grids it touches.
    """
    where, params = where_clause(f)
    n = _count(conn, where, params)
    if n > MAX_POINTS:
        raise InvalidInput(
            f"{n:,} reports match: more than {MAX_POINTS:,}; narrow by theme, campaign or dates"
        )
    srid = grids_utm_srid(conn)
    rows = conn.execute(
        text(
            f"""
            WITH pts AS (
              SELECT r.category, r.grid_code, ST_Transform(r.geom, {srid}) AS g
              FROM reports r WHERE {where}
            ),
            labelled AS (
              SELECT *, ST_ClusterDBSCAN(g, eps => :eps, minpoints => :minp) OVER () AS cid
              FROM pts
            )
            SELECT cid, count(*) AS n,
                   mode() WITHIN GROUP (ORDER BY category) AS dominant,
                   array_agg(DISTINCT grid_code ORDER BY grid_code)
                     FILTER (WHERE grid_code IS NOT NULL) AS grids,
                   ST_AsGeoJSON(ST_Transform(
                     ST_Buffer(ST_ConvexHull(ST_Collect(g)), :eps / 2.0), 4326), 6) AS gj,
                   ST_Area(ST_Buffer(ST_ConvexHull(ST_Collect(g)), :eps / 2.0)) AS area_m2
            FROM labelled WHERE cid IS NOT NULL
            GROUP BY cid ORDER BY n DESC, cid
            """
        ),
        {**params, "eps": eps_m, "minp": min_points},
    ).all()
    features = [
        {
            "type": "Feature",
            "id": i + 1,
            "geometry": orjson.loads(r.gj),
            "properties": {
                "cluster": i + 1,
                "count": int(r.n),
                "dominant_category": r.dominant,
                "grids": list(r.grids or []),
                "area_m2": round(float(r.area_m2), 1),
            },
        }
        for i, r in enumerate(rows)
    ]
    clustered = sum(ft["properties"]["count"] for ft in features)
    return {
        "type": "FeatureCollection",
        "features": features,
        "points": n,
        "clustered": clustered,
        "noise": n - clustered,
        "method": {
            "algorithm": "ST_ClusterDBSCAN",
            "eps_m": eps_m,
            "min_points": min_points,
            "srid": srid,
        },
    }


def _hexbins(conn: Connection, f: ReportFilter, size_m: float) -> dict:
    """Return report counts on a hexagon grid (edge `size_m` metres) as a FeatureCollection.

    Only hexagons holding reports are returned, so the answer grows with the area covered,
    not with the number of reports.
    """
    where, params = where_clause(f)
    srid = grids_utm_srid(conn)
    rows = conn.execute(
        text(
            f"""
            WITH pts AS (
              SELECT r.id, ST_Transform(r.geom, {srid}) AS g FROM reports r WHERE {where}
            ),
            {_cells("")}
            SELECT i, j, count(*) AS n,
                   ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_Hexagon(:size, i, j), {srid}), 4326), 6)
                     AS gj
            FROM cell GROUP BY i, j ORDER BY n DESC, i, j
            """
        ),
        {**params, "size": size_m},
    ).all()
    area_km2 = 3 * 3**0.5 / 2 * size_m**2 / 1e6
    features = [
        {
            "type": "Feature",
            "id": f"{r.i}:{r.j}",
            "geometry": orjson.loads(r.gj),
            "properties": {
                "i": r.i,
                "j": r.j,
                "count": int(r.n),
                "density_km2": round(r.n / area_km2, 3),
            },
        }
        for r in rows
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "total": sum(ft["properties"]["count"] for ft in features),
        "method": {
            "grid": "ST_HexagonGrid",
            "size_m": size_m,
            "srid": srid,
            "cell_area_km2": round(area_km2, 4),
        },
    }


def hexbins_by_period(
    conn: Connection,
    f: ReportFilter,
    size_m: float,
    since: datetime,
    step_s: float,
    periods: int,
    top: int,
) -> list[list[tuple[float, float, int]]]:
    """Return, per period of `step_s` seconds from `since`, the `top` busiest hexagons as
    (lat, lon, count) of their centres: one statement for the whole time slider."""
    where, params = where_clause(f)
    srid = grids_utm_srid(conn)
    rows = conn.execute(
        text(
            f"""
            WITH pts AS (
              SELECT r.id, ST_Transform(r.geom, {srid}) AS g,
                     floor(extract(epoch FROM r.reported_at - :since) / :step)::int AS t
              FROM reports r WHERE {where} AND r.reported_at >= :since
                AND r.reported_at < :since + make_interval(secs => :step * :periods)
            ),
            {_cells("p.t,")},
            counted AS (
              SELECT t, i, j, count(*) AS n,
                     row_number() OVER (PARTITION BY t ORDER BY count(*) DESC, i, j) AS rank
              FROM cell GROUP BY t, i, j
            )
            SELECT t, n, ST_Y(c) AS lat, ST_X(c) AS lon FROM (
              SELECT t, n, ST_Transform(ST_Centroid(ST_SetSRID(ST_Hexagon(:size, i, j), {srid})),
                                        4326) AS c
              FROM counted WHERE rank <= :top) s
            ORDER BY t, n DESC
            """
        ),
        {**params, "since": since, "step": step_s, "periods": periods, "size": size_m, "top": top},
    ).all()
    out: list[list[tuple[float, float, int]]] = [[] for _ in range(periods)]
    for t, n, lat, lon in rows:
        if 0 <= t < periods:
            out[t].append((round(lat, 5), round(lon, 5), int(n)))
    return out
