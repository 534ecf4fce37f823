"""Projected CRS for metre-based work, chosen from the stored grids (UTM 51N for Daqing)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.cache import Versions, cached


def utm_srid(lon: float, lat: float) -> int:
    """Return the EPSG code of the WGS-84 UTM zone containing (lon, lat)."""
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def grids_utm_srid(conn: Connection, v: Versions) -> int:
    """Return the UTM zone of the stored grids' centre (reports are measured in it)."""
    return cached(("utm", *v.boundary_key), lambda: _grids_utm_srid(conn))[0]


def _grids_utm_srid(conn: Connection) -> int:
    row = conn.execute(
        text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) AS c "
            "FROM grids) s"
        )
    ).one()
    if row[0] is None:
        # No grids, so no reports either (they are refused outside the service area): any
        # zone measures an empty set.
        return utm_srid(0.0, 0.0)
    return utm_srid(float(row[0]), float(row[1]))
