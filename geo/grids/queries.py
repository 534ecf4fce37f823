"""Grid queries. GeoJSON is assembled inside PostGIS: one round trip, no Python per feature."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from geo.errors import NotFound

_FEATURE = """json_build_object(
  'type', 'Feature', 'id', g.code,
  'geometry', ST_AsGeoJSON(g.geom, 7)::json,
  'properties', json_build_object(
    'code', g.code, 'name', g.name, 'kind', g.kind, 'category', g.category,
    'community_code', g.community_code, 'district_code', g.district_code,
    'population', g.population, 'area_m2', round(g.area_m2::numeric, 1),
    'boundary_version', g.boundary_version))"""


@dataclass(frozen=True)
class GridFilter:
    """Which grids a list request asks for; values are validated before they get here."""

    bbox: tuple[float, float, float, float] | None = None
    kind: str | None = None
    district: str | None = None
    community: str | None = None


def _where(f: GridFilter) -> tuple[str, dict]:
    clauses: list[str] = ["TRUE"]
    params: dict[str, object] = {}
    if f.bbox is not None:
        clauses.append(
            "g.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326) AND "
            "ST_Intersects(g.geom, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326))"
        )
        params.update(dict(zip(("minx", "miny", "maxx", "maxy"), f.bbox, strict=True)))
    if f.kind is not None:
        clauses.append("g.kind = :kind")
        params["kind"] = f.kind
    if f.district is not None:
        clauses.append("g.district_code = :district")
        params["district"] = f.district
    if f.community is not None:
        clauses.append("g.community_code = :community")
        params["community"] = f.community
    return " AND ".join(clauses), params


def list_json(conn: Connection, f: GridFilter, limit: int, offset: int) -> str:
    """Return a GeoJSON FeatureCollection of the matching grids, ordered by code, one page."""
    where, params = _where(f)
    sql = f"""
        SELECT json_build_object(
          'type', 'FeatureCollection',
          'numberMatched', (SELECT count(*) FROM grids g WHERE {where}),
          'numberReturned', count(p.code),
          'features', COALESCE(json_agg(p.feature ORDER BY p.code)
                               FILTER (WHERE p.code IS NOT NULL), '[]'::json))::text
        FROM (SELECT g.code, {_FEATURE} AS feature FROM grids g WHERE {where}
              ORDER BY g.code LIMIT :limit OFFSET :offset) p
    """
    return str(conn.execute(text(sql), {**params, "limit": limit, "offset": offset}).scalar_one())


def feature_json(conn: Connection, code: str) -> str:
    """Return one grid as a GeoJSON Feature string."""
    row = conn.execute(
        text(f"SELECT {_FEATURE}::text FROM grids g WHERE g.code = :code"), {"code": code}
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no grid with code {code!r} among the stored grids")
    return str(row)


_LOOKUP = text(
    f"""
    SELECT json_build_object(
      'type', 'FeatureCollection',
      'features', COALESCE(json_agg(p.feature ORDER BY p.rank, p.code), '[]'::json))::text
    FROM (SELECT g.code, CASE g.kind WHEN 'exclusive' THEN 0 ELSE 1 END AS rank,
                 {_FEATURE} AS feature
          FROM grids g
          WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))) p
    """
)


def lookup_json(conn: Connection, lon: float, lat: float) -> str:
    """Return the grids covering a WGS-84 point as a FeatureCollection, exclusive grids first.

    Boundary points count (ST_Covers); among comprehensive grids the lowest code comes first.
    """
    return str(conn.execute(_LOOKUP, {"lon": lon, "lat": lat}).scalar_one())


def counts(conn: Connection) -> dict[str, int]:
    """Return row counts of the main tables, for the health check."""
    row = (
        conn.execute(
            text(
                """
            SELECT (SELECT count(*) FROM areas) AS areas,
                   (SELECT count(*) FROM grids WHERE kind = 'comprehensive') AS comprehensive_grids,
                   (SELECT count(*) FROM grids WHERE kind = 'exclusive') AS exclusive_grids,
                   (SELECT count(*) FROM campaigns) AS campaigns,
                   (SELECT count(*) FROM reports) AS reports,
                   (SELECT max(id) FROM boundary_versions) AS boundary_version
            """
            )
        )
        .mappings()
        .one()
    )
    return {k: (int(v) if v is not None else None) for k, v in row.items()}  # type: ignore[misc]


def postgis_version(conn: Connection) -> str:
    """Return the PostGIS library version string."""
    return str(conn.execute(text("SELECT postgis_lib_version()")).scalar_one())


def centres(conn: Connection) -> list[dict]:
    """Return every comprehensive grid's inner point, area and population (demo generation)."""
    rows = conn.execute(
        text(
            "SELECT code, district_code, population, area_m2, "
            "ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat "
            "FROM grids WHERE kind = 'comprehensive' ORDER BY code"
        )
    ).mappings()
    return [dict(r) for r in rows]
