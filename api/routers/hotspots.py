"""Hotspots per campaign theme: per-grid aggregates and Getis-Ord Gi*."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import ConnDep, FilterDep, PrincipalDep, SettingsDep, VersionsDep
from api.schemas import FEATURE_COLLECTION, GEOJSON, GeoJSONResponse, answers
from geo.analytics import patterns
from geo.analytics.counts import grids_geojson
from geo.analytics.emerging import EmergingSpec, emerging_geojson
from geo.analytics.gistar import GiSpec, gistar_geojson
from geo.analytics.quiet import HouseholdRight, QuietSpec, quiet_answer
from geo.analytics.weights import MAX_DISTANCE_BAND_M
from geo.errors import InvalidInput

# A band under a metre links no grids: refused at the door rather than computed.
MIN_DISTANCE_BAND_M = 1.0
router = APIRouter(prefix="/api/v1/hotspots", tags=["hotspots"])


def _geojson(body: bytes, cached: bool) -> Response:
    return GeoJSONResponse(body, headers={"X-Cache": "hit" if cached else "miss"})


@router.get(
    "/grids",
    summary="Per grid: report count, density per km², rate per 1,000 residents",
    response_class=GeoJSONResponse,
    responses=answers(FEATURE_COLLECTION),
)
def grid_aggregates(conn: ConnDep, f: FilterDep, v: VersionsDep) -> Response:
    return _geojson(*grids_geojson(conn, f, v))


@router.get(
    "/gistar",
    summary="Getis-Ord Gi* hot and cold spots over the comprehensive grids",
    response_class=GeoJSONResponse,
    responses=answers(FEATURE_COLLECTION),
)
def gistar(
    conn: ConnDep,
    f: FilterDep,
    v: VersionsDep,
    weights: Literal["queen", "distance"] = "queen",
    distance_m: Annotated[
        float | None, Query(ge=MIN_DISTANCE_BAND_M, le=MAX_DISTANCE_BAND_M, allow_inf_nan=False)
    ] = None,
    permutations: Annotated[int, Query(ge=99, le=9999)] = 999,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 12345,
    fdr: bool = False,
) -> Response:
    if weights == "distance" and distance_m is None:
        raise InvalidInput("weights=distance needs distance_m (metres), e.g. distance_m=1500")
    spec = GiSpec(weights, distance_m if weights == "distance" else None, permutations, seed, fdr)
    return _geojson(*gistar_geojson(conn, f, spec, v))


@router.get("/clusters", summary="DBSCAN clusters of reports (metres), as polygons")
def clusters(
    conn: ConnDep,
    f: FilterDep,
    v: VersionsDep,
    eps_m: Annotated[float, Query(ge=1, le=10_000, allow_inf_nan=False)] = 300.0,
    min_points: Annotated[int, Query(ge=2, le=10_000)] = 10,
) -> dict:
    return patterns.dbscan(conn, f, v, eps_m, min_points)


@router.get("/hexbins", summary="Report counts on a hexagon grid (edge in metres)")
def hexbins(
    conn: ConnDep,
    f: FilterDep,
    v: VersionsDep,
    size_m: Annotated[float, Query(ge=50, le=50_000, allow_inf_nan=False)] = 500.0,
) -> dict:
    return patterns.hexbins(conn, f, v, size_m)


@router.get(
    "/emerging",
    summary="Emerging hot spots: Gi* per time slice and a Mann-Kendall trend",
    response_class=GeoJSONResponse,
    responses=answers(FEATURE_COLLECTION),
)
def emerging(
    conn: ConnDep,
    f: FilterDep,
    v: VersionsDep,
    step: Literal["day", "week", "month"] = "week",
) -> Response:
    return _geojson(*emerging_geojson(conn, f, EmergingSpec(step), v))


@router.get(
    "/quiet",
    summary="Quiet grids (核查漏报): fewer reports than their residents would send at the rate",
    description=(
        "Per comprehensive grid of the caller's scope (and `district`): `observed` reports, "
        "`expected` = the stratum's rate (街道 / 乡镇) x residents, Poisson lower-tail `p`, "
        "Benjamini-Hochberg `q` (null where fewer than maps.quiet_min_expected are expected: "
        "not tested), `quiet` where q < maps.quiet_max_q. Residents estimated from 1 to k-1 "
        "households (auth.k_anonymity) outside the caller's household scope are `null` with "
        "`suppressed: true`."
    ),
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object", "required": ["grids"]}},
                GEOJSON: {"schema": FEATURE_COLLECTION},
            }
        }
    },
)
def quiet(
    conn: ConnDep,
    f: FilterDep,
    v: VersionsDep,
    who: PrincipalDep,
    settings: SettingsDep,
    format: Literal["json", "geojson"] = "json",
) -> Response:
    spec, k = QuietSpec.of(settings.maps), settings.auth.k_anonymity
    geojson = format == "geojson"
    body, cached = quiet_answer(conn, f, spec, v, k, HouseholdRight.of(who), geojson)
    media = GEOJSON if geojson else "application/json"
    return Response(body, media_type=media, headers={"X-Cache": "hit" if cached else "miss"})
