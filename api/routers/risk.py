"""Flood risk for coordinators: risk layers, the grid ranking, ad-hoc area queries."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Response

from api.deps import (
    ConnDep,
    OptionalCode,
    PlainQuery,
    PrincipalDep,
    QueryTime,
    SettingsDep,
    VersionsDep,
)
from api.errors import error_response, error_responses
from api.schemas import (
    CSV,
    FEATURE_COLLECTION,
    XLSX,
    AreaQuery,
    GeoJSONResponse,
    answers,
    files,
)
from geo import exports
from geo.errors import Forbidden
from geo.risk import area_query as areas
from geo.risk import layers as risk_layers
from geo.risk import ranking
from geo.vocabulary import RiskKind
from geo.windows import check_window

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])
Format = Literal["geojson", "csv", "xlsx"]


def _file(body: bytes, media: str, name: str, headers: dict[str, str] | None = None) -> Response:
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=media, headers={**disposition, **(headers or {})})


@router.get(
    "/layers",
    summary="Stored risk features (flood zones, rivers, …) as GeoJSON",
    response_class=GeoJSONResponse,
    responses=answers(FEATURE_COLLECTION),
)
def layers(conn: ConnDep, kind: RiskKind | None = None) -> Response:
    return GeoJSONResponse(risk_layers.geojson(conn, kind))


@router.get("/layers/summary", summary="Features, areas and lengths per kind and level")
def layers_summary(conn: ConnDep) -> list[dict]:
    return risk_layers.summary(conn)


@router.get(
    "/grids",
    summary="Comprehensive grids ranked by flood risk, with the parts of the score",
    description=(
        "Household counts from 1 to k-1 (auth.k_anonymity) are `null` with `suppressed: true` "
        "for grids outside the caller's household scope (admins: all; coordinators: their "
        "districts; workers: their grids), and such a grid's vulnerable part and score are "
        "computed from k residents, so that neither gives the count back."
    ),
    response_class=GeoJSONResponse,
    responses={**answers(FEATURE_COLLECTION, CSV, XLSX), **error_responses(404)},
)
def ranked_grids(
    conn: ConnDep,
    settings: SettingsDep,
    v: VersionsDep,
    who: PrincipalDep,
    theme: Annotated[str, Query(max_length=32), PlainQuery] = "flood",
    min_level: Annotated[int, Query(ge=1, le=3)] = 1,
    buffer_m: Annotated[float | None, Query(ge=1, le=50_000, allow_inf_nan=False)] = None,
    since: QueryTime = None,
    district: OptionalCode = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    format: Format = "geojson",
) -> Response:
    check_window(since, None)
    spec = ranking.RankSpec(theme, min_level, buffer_m, since, district)
    frame = ranking.ranking(conn, spec, settings.risk, v)
    exact = ranking.exact_grids(frame, who)
    frame = ranking.withhold_households(frame, exact, settings.auth.k_anonymity, settings.risk)
    if limit is not None:
        frame = frame.head(limit)
    if format == "csv":
        return _file(exports.to_csv(frame), "text/csv; charset=utf-8", "flood_risk_grids.csv")
    if format == "xlsx":
        return _file(exports.to_xlsx({"grids": frame}), XLSX, "flood_risk_grids.xlsx")
    extra = {"method": ranking.method(spec, settings.risk), "grids": len(frame)}
    return GeoJSONResponse(ranking.ranking_geojson(conn, frame, extra, v))


@router.post(
    "/query",
    summary="What lies in a drawn polygon, or near a risk feature: grids, hazards, households",
    description=(
        "The polygon must lie within the service area (within `reports.service_area_margin_m` "
        "of a grid, as reports) and measure at most `risk.max_query_km2`, geodesically and on "
        "an equal-area plane; an edge across more than 180° of longitude is refused. The "
        "relocation list (names, phones, positions) comes to coordinators (their districts' "
        "households) and admins, audited as `personal_data.read` (csv/xlsx: "
        "`personal_data.export`) with the people listed, with `Cache-Control: no-store`. For "
        "other roles, household and people counts from 1 to k-1 (per grid, in total) and the "
        "hazard counts of sensitive themes are `null` with `suppressed: true` on their row "
        "(`households`, each grid, `hazards`, each category), and further counts are withheld "
        "so that none can be told from a total minus the rest."
    ),
    responses={
        **files(CSV, XLSX),
        403: error_response(403, "a relocation-list export asked for without the role"),
        **error_responses(404),
    },
)
def area_query(
    body: AreaQuery,
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    v: VersionsDep,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Response:
    if format == "csv" and not who.sees_relocation:
        raise Forbidden(
            "the relocation list holds names, phones and positions: coordinators and admins "
            "only. Without a coordinator token, ask for format=json (counts) or xlsx"
        )
    rules, margin = settings.risk, settings.reports.service_area_margin_m
    service = areas.service_area(conn, v, margin)
    if body.feature is not None:
        area = areas.area_around_feature(
            conn, body.feature.kind, body.feature.code, body.distance_m, rules, service
        )
    else:
        area = areas.area_from_geojson(body.geometry, body.crs, body.repair, rules)
        areas.check_service_area(conn, area, service, margin)
    limit = body.limit if format == "json" else None
    result = areas.area_query(conn, area, who, settings.auth, limit, export=format != "json")
    conn.commit()  # the audit entry of a relocation list shown, with the read itself
    headers = {"Cache-Control": "no-store"} if result["relocation"] is not None else {}
    if format == "csv":
        frame = areas.area_summary_frames(result)["relocation"]
        body_csv = exports.to_csv(frame)
        return _file(body_csv, "text/csv; charset=utf-8", "relocation.csv", headers)
    if format == "xlsx":
        sheets = exports.to_xlsx(areas.area_summary_frames(result))
        return _file(sheets, XLSX, "area_query.xlsx", headers)
    return Response(orjson.dumps(result), media_type="application/json", headers=headers)
