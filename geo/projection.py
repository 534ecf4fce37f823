"""Projected CRS for metre-based work, chosen from the data (UTM 51N for Daqing)."""

from __future__ import annotations

from sqlalchemy import Connection, text


def utm_srid(lon: float, lat: float) -> int:
    """Return the EPSG code of the WGS-84 UTM zone containing (lon, lat)."""
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def grids_utm_srid(conn: Connection) -> int:
    """Return the UTM zone of the loaded grids' centre (reports are measured in it)."""
    row = conn.execute(
        text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) AS c "
            "FROM grids) s"
        )
    ).one()
    if row[0] is None:
        return utm_srid(125.0, 46.6)  # nothing loaded yet: Daqing's zone
    return utm_srid(float(row[0]), float(row[1]))
