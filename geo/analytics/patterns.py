"""Point patterns of reports in metres: DBSCAN clusters and hexagon bins (set-based PostGIS).

Each report is placed where the filter's scope may see it (geo.reports.fragments.point): a
masked theme at its grid's representative point, so no heat or cluster layer shows the exact
point to someone who sees the theme masked. The scope is part of the filter, hence of every key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from geo.cache import Versions, cached
from geo.errors import InvalidInput
from geo.projection import grids_utm_srid
from geo.reports.fragments import masked_binds, point
from geo.reports.queries import ReportFilter, where_clause

MAX_POINTS = 250_000  # DBSCAN over more is minutes, not seconds: narrow the query


def _cells(extra: str) -> str:
    """The hexagon (i, j) of each point of `pts(id, g[, t])`, numbered as ST_HexagonGrid does.

    Arithmetic, not geometry: ST_HexagonGrid's column i is centred at x = 1.5 * size * i and
    row j at y = sqrt(3) * size * j, shifted half a row up in odd columns. A point lies in the
    hexagon with the nearest centre, one of two columns; a tie (a point on an edge) goes to the
    lower (i, j). Five times faster than generating hexagons per point.
    """
    return f"""cell AS (
              SELECT {extra} CASE WHEN p.d0 <= p.d1 THEN p.i0 ELSE p.i0 + 1 END AS i,
                     CASE WHEN p.d0 <= p.d1 THEN p.j0 ELSE p.j1 END AS j
              FROM (
                SELECT c.*,
                       (c.x - 1.5 * :size * c.i0) ^ 2
                         + (c.y - sqrt(3) * :size * c.j0 - c.dy0) ^ 2 AS d0,
                       (c.x - 1.5 * :size * (c.i0 + 1)) ^ 2
                         + (c.y - sqrt(3) * :size * c.j1 - c.dy1) ^ 2 AS d1
                FROM (
                  SELECT b.*, round((b.y - b.dy0) / (sqrt(3) * :size))::int AS j0,
                         round((b.y - b.dy1) / (sqrt(3) * :size))::int AS j1
                  FROM (
                    SELECT a.*,
                           CASE WHEN mod(a.i0, 2) <> 0 THEN sqrt(3) * :size / 2 ELSE 0 END AS dy0,
                           CASE WHEN mod(a.i0, 2) <> 0 THEN 0 ELSE sqrt(3) * :size / 2 END AS dy1
                    FROM (SELECT q.*, floor(q.x / (1.5 * :size))::int AS i0
                          -- OFFSET 0 keeps the planner from repeating the projection per use.
                          FROM (SELECT r.*, ST_X(r.g) AS x, ST_Y(r.g) AS y
                                FROM pts r OFFSET 0) q) a
                  ) b
                ) c
              ) p
            )"""


def _filtered(f: ReportFilter) -> tuple[str, dict]:
    """Return the filter's condition with every bind value the shown point needs too."""
    where, params = where_clause(f)
    return where, {**params, **masked_binds(f.scope)}


def _report_cells(srid: int, where: str, f: ReportFilter) -> str:
    """CTEs `pts` (the matching reports in UTM, where `f`'s scope may see them) and `cell`
    (the hexagon of each)."""
    return f"""pts AS (
              SELECT r.id, ST_Transform({point(f.scope)}, {srid}) AS g
              FROM reports r WHERE {where}
            ),
            {_cells("")}"""


def _centre(srid: int) -> str:
    """WGS-84 centre of hexagon (i, j), by the same arithmetic as `_cells`."""
    return (
        "ST_Transform(ST_SetSRID(ST_MakePoint(1.5 * :size * i, sqrt(3) * :size * j"
        f" + CASE WHEN mod(i, 2) <> 0 THEN sqrt(3) * :size / 2 ELSE 0 END), {srid}), 4326)"
    )


def _count(conn: Connection, where: str, params: dict) -> int:
    return int(
        conn.execute(text(f"SELECT count(*) FROM reports r WHERE {where}"), params).scalar_one()
    )


def dbscan(
    conn: Connection,
    f: ReportFilter,
    v: Versions,
    eps_m: float,
    min_points: int,
    sample_to: int | None = None,
) -> dict:
    """Return DBSCAN clusters as a FeatureCollection, cached per query and data version.

    With `sample_to`, more matching reports than that are clustered as a repeatable Bernoulli
    sample of about that size, `min_points` and counts scaled by the sampling rate: the
    outlines of dense areas stay, the time stays bounded (a map, not an exact census).
    """
    return cached(
        ("dbscan", f, eps_m, min_points, sample_to, v),
        lambda: _dbscan(conn, f, grids_utm_srid(conn, v), eps_m, min_points, sample_to),
    )[0]


def hexbins(conn: Connection, f: ReportFilter, v: Versions, size_m: float) -> dict:
    """Return report counts on a hexagon grid, cached per query and data version."""
    srid = grids_utm_srid(conn, v)
    return cached(("hexbins", f, size_m, v), lambda: _hexbins(conn, f, srid, size_m))[0]


_DBSCAN_SQL = """
    WITH pts AS (
      SELECT r.category, r.grid_code, ST_Transform({point}, {srid}) AS g
      FROM reports r {sample} WHERE {where}
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


def _dbscan(
    conn: Connection,
    f: ReportFilter,
    srid: int,
    eps_m: float,
    min_points: int,
    sample_to: int | None,
) -> dict:
    """Return DBSCAN clusters (eps in metres, in the grids' UTM zone) as a FeatureCollection.

    Each cluster is the convex hull of its reports buffered by eps/2, with its count, dominant
    category and the grids it touches.
    """
    where, params = _filtered(f)
    n = _count(conn, where, params)
    rate = 1.0 if sample_to is None or n <= sample_to else sample_to / n
    if n * rate > MAX_POINTS:
        raise InvalidInput(
            f"{n:,} reports match: more than {MAX_POINTS:,}; narrow by theme, campaign or dates"
        )
    sample = f"TABLESAMPLE BERNOULLI ({100 * rate!r}) REPEATABLE (7)" if rate < 1 else ""
    sql = _DBSCAN_SQL.format(srid=srid, sample=sample, where=where, point=point(f.scope))
    rows = conn.execute(
        text(sql), {**params, "eps": eps_m, "minp": max(2, round(min_points * rate))}
    ).all()
    features = [_cluster_feature(i + 1, r, rate) for i, r in enumerate(rows)]
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
            "sample_rate": round(rate, 6),
        },
    }


def _cluster_feature(number: int, r: Any, rate: float) -> dict:
    """Return one cluster as a GeoJSON Feature, its count scaled back from the sample."""
    return {
        "type": "Feature",
        "id": number,
        "geometry": orjson.loads(r.gj),
        "properties": {
            "cluster": number,
            "count": round(r.n / rate),
            "dominant_category": r.dominant,
            "grids": list(r.grids or []),
            "area_m2": round(float(r.area_m2), 1),
        },
    }


def _hexbins(conn: Connection, f: ReportFilter, srid: int, size_m: float) -> dict:
    """Return report counts on a hexagon grid (edge `size_m` metres) as a FeatureCollection.

    Only hexagons holding reports are returned, so the answer grows with the area covered,
    not with the number of reports.
    """
    where, params = _filtered(f)
    rows = conn.execute(
        text(
            f"""
            WITH {_report_cells(srid, where, f)}
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


def hex_centres(
    conn: Connection, f: ReportFilter, v: Versions, size_m: float, top: int
) -> list[tuple[float, float, int]]:
    """Return the `top` busiest hexagons as (lat, lon, count) of their centres, busiest first.

    What a heat layer needs, without hexagon outlines; cached per query and data version.
    """

    def compute() -> list[tuple[float, float, int]]:
        where, params = _filtered(f)
        srid = grids_utm_srid(conn, v)
        rows = conn.execute(
            text(
                f"""
                WITH {_report_cells(srid, where, f)},
                counted AS (
                  SELECT i, j, count(*) AS n FROM cell GROUP BY i, j
                  ORDER BY n DESC, i, j LIMIT :top
                )
                SELECT n, ST_Y(c) AS lat, ST_X(c) AS lon
                FROM (SELECT n, i, j, {_centre(srid)} AS c FROM counted) s
                ORDER BY n DESC, i, j
                """
            ),
            {**params, "size": size_m, "top": top},
        ).all()
        return [(round(lat, 5), round(lon, 5), int(n)) for n, lat, lon in rows]

    return cached(("hex_centres", f, size_m, top, v), compute)[0]


def hexbins_by_period(
    conn: Connection,
    f: ReportFilter,
    v: Versions,
    size_m: float,
    since: datetime,
    step_s: float,
    periods: int,
    top: int,
) -> list[list[tuple[float, float, int]]]:
    """Return, per period of `step_s` seconds from `since`, the `top` busiest hexagons as
    (lat, lon, count) of their centres: one statement for the whole time slider."""
    where, params = _filtered(f)
    srid = grids_utm_srid(conn, v)
    rows = conn.execute(
        text(
            f"""
            WITH pts AS (
              SELECT r.id, ST_Transform({point(f.scope)}, {srid}) AS g,
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
              SELECT t, n, {_centre(srid)} AS c FROM counted WHERE rank <= :top) s
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
