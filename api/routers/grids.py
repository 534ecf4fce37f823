"""Grids: list by bbox/kind/district, one by code, and the point lookup assignment uses."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import CodePath, ConnDep, OptionalCode, PlainQuery, SettingsDep, parse_bbox
from api.errors import error_responses
from api.schemas import FEATURE, FEATURE_COLLECTION, GeoJSONResponse, answers
from geo import coords
from geo.grids import queries as grid_queries
from geo.vocabulary import GridKind

router = APIRouter(prefix="/api/v1/grids", tags=["grids"])


def _geojson(body: str) -> Response:
    return GeoJSONResponse(content=body)


@router.get(
    "",
    summary="Grids as a GeoJSON FeatureCollection",
    response_class=GeoJSONResponse,
    responses=answers(FEATURE_COLLECTION),
)
def list_grids(
    conn: ConnDep,
    settings: SettingsDep,
    bbox: Annotated[
        str | None,
        Query(
            max_length=200,
            description="minlon,minlat,maxlon,maxlat",
            examples=["125.0,46.55,125.1,46.62"],
        ),
        PlainQuery,
    ] = None,
    kind: GridKind | None = None,
    district: OptionalCode = None,
    community: OptionalCode = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    crs: Annotated[
        Literal["wgs84", "gcj02"],
        Query(description="output coordinates: gcj02 to overlay Amap/Gaode tiles"),
    ] = "wgs84",
) -> Response:
    lim = settings.limits
    if limit is None:
        limit = lim.default_page_size
    if limit > lim.max_page_size:
        from geo.errors import InvalidInput

        raise InvalidInput(f"limit must be at most {lim.max_page_size}; page with offset")
    f = grid_queries.GridFilter(parse_bbox(bbox, lim.max_bbox_deg2), kind, district, community)
    body = grid_queries.list_json(conn, f, limit, offset)
    if crs == "gcj02":
        body = orjson.dumps(coords.geojson_to_gcj02(orjson.loads(body))).decode()
    return _geojson(body)


@router.get(
    "/lookup",
    summary="Grids covering a point (exclusive first)",
    response_class=GeoJSONResponse,
    responses=answers(FEATURE_COLLECTION),
)
def lookup(
    conn: ConnDep,
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="WGS-84")],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="WGS-84")],
) -> Response:
    return _geojson(grid_queries.lookup_json(conn, lon, lat))


@router.get(
    "/{code}",
    summary="One grid as a GeoJSON Feature",
    response_class=GeoJSONResponse,
    responses={**answers(FEATURE), **error_responses(404)},
)
def get_grid(conn: ConnDep, code: CodePath) -> Response:
    return _geojson(grid_queries.feature_json(conn, code))
