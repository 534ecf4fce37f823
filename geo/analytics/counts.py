"""Report counts per grid: the input of Gi* and the planners' per-grid aggregates."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, text

from geo.cache import Versions, cached
from geo.geojson import feature_collection
from geo.grids.layer import COMPREHENSIVE_OF, GridLayer, grid_layer
from geo.reports.queries import ReportFilter, where_clause


def grid_counts(conn: Connection, f: ReportFilter, layer: GridLayer) -> tuple[np.ndarray, dict]:
    """Return report counts per comprehensive grid (layer order) and per exclusive grid."""
    where, params = where_clause(f)
    # Counted per grid code first (a hash aggregate), and the grid beneath looked up only for
    # the few reports in exclusive grids: grouping every report by the looked-up code made
    # PostgreSQL sort them all (29 ms against 15 for the demo).
    rows = conn.execute(
        text(
            f"""
            SELECT g.kind, g.code AS comprehensive, g.code, x.n
            FROM (SELECT r.grid_code, count(*) AS n FROM reports r WHERE {where} GROUP BY 1) x
            JOIN grids g ON g.code = x.grid_code AND g.kind = 'comprehensive'
            UNION ALL
            SELECT g.kind, {COMPREHENSIVE_OF} AS comprehensive, g.code, count(*) AS n
            FROM reports r JOIN grids g ON g.code = r.grid_code AND g.kind = 'exclusive'
            WHERE {where}
            GROUP BY 1, 2, 3
            """
        ),
        params,
    ).all()
    counts = np.zeros(len(layer.codes))
    exclusive: dict[str, int] = {}
    for kind, comp, code, n in rows:
        if comp is not None and comp in layer.index:
            counts[layer.index[comp]] += n
        if kind == "exclusive":
            exclusive[code] = exclusive.get(code, 0) + int(n)
    return counts, exclusive


def rounded(v: float | None, nd: int = 4) -> float | None:
    """Return `v` rounded to `nd` places, or None for a missing or non-finite value."""
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def base_properties(layer: GridLayer, counts: np.ndarray) -> list[dict]:
    """Return each grid's code, name, count, density per km² and rate per 1,000 residents."""
    density = counts / np.where(layer.area_km2 > 0, layer.area_km2, np.nan)
    rate = counts / np.where(layer.population > 0, layer.population, np.nan) * 1000
    return [
        {
            "code": c,
            "name": n,
            "count": int(k),
            "density_km2": rounded(d, 3),
            "rate_per_1000": rounded(r, 3),
        }
        for c, n, k, d, r in zip(layer.codes, layer.names, counts, density, rate, strict=True)
    ]


def layer_geojson(layer: GridLayer, props: list[dict], extra: dict) -> bytes:
    """Return the layer's grids with `props` (layer order) as GeoJSON bytes."""
    return feature_collection(zip(layer.codes, layer.geometry_json, props, strict=True), extra)


def exclusive_counts(exclusive: dict[str, int]) -> list[dict]:
    """Return the exclusive grids' own counts as a sorted list of {code, count}."""
    return [{"code": k, "count": n} for k, n in sorted(exclusive.items())]


def grids_geojson(conn: Connection, f: ReportFilter, v: Versions) -> tuple[bytes, bool]:
    """Return per-grid counts, density per km² and rate per 1,000 residents as GeoJSON bytes."""

    def compute() -> bytes:
        layer = grid_layer(conn, v)
        counts, exclusive = grid_counts(conn, f, layer)
        extra = {
            "boundary_version": v.boundary,
            "total": int(counts.sum()),
            "exclusive": exclusive_counts(exclusive),
        }
        return layer_geojson(layer, base_properties(layer, counts), extra)

    return cached(("grids", f, v), compute)
