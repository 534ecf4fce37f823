"""Flood risk for coordinators: risk layers, the grid ranking, ad-hoc area queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Response

from api.deps import ConnDep, OptionalCode, PrincipalDep, SettingsDep, VersionsDep
from api.schemas import AreaQuery
from geo import exports
from geo.errors import Forbidden, InvalidInput
from geo.risk import area_query as areas
from geo.risk import layers as risk_layers
from geo.risk import ranking
from geo.vocabulary import RiskKind

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])
Format = Literal["geojson", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file(body: bytes, media: str, name: str) -> Response:
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/layers", summary="Stored risk features (flood zones, rivers, …) as GeoJSON")
def layers(conn: ConnDep, kind: RiskKind | None = None) -> Response:
    return Response(risk_layers.geojson(conn, kind), media_type="application/geo+json")


@router.get("/layers/summary", summary="Features, areas and lengths per kind and level")
def layers_summary(conn: ConnDep) -> list[dict]:
    return risk_layers.summary(conn)


@router.get(
    "/grids",
    summary="Comprehensive grids ranked by flood risk, with the parts of the score",
)
def ranked_grids(
    conn: ConnDep,
    settings: SettingsDep,
    v: VersionsDep,
    theme: Annotated[str, Query(max_length=32)] = "flood",
    min_level: Annotated[int, Query(ge=1, le=3)] = 1,
    buffer_m: Annotated[float | None, Query(gt=0, le=50_000, allow_inf_nan=False)] = None,
    since: datetime | None = None,
    district: OptionalCode = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    format: Format = "geojson",
) -> Response:
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since needs a time zone offset, e.g. 2024-07-01T00:00:00+08:00")
    spec = ranking.RankSpec(theme, min_level, buffer_m, since, district)
    frame = ranking.ranking(conn, spec, settings.risk, v)
    if limit is not None:
        frame = frame.head(limit)
    if format == "csv":
        return _file(exports.to_csv(frame), "text/csv; charset=utf-8", "flood_risk_grids.csv")
    if format == "xlsx":
        return _file(exports.to_xlsx({"grids": frame}), XLSX, "flood_risk_grids.xlsx")
    extra = {"method": ranking.method(spec, settings.risk), "grids": len(frame)}
    return Response(
        ranking.ranking_geojson(conn, frame, extra, v), media_type="application/geo+json"
    )


@router.post(
    "/query",
    summary="What lies in a drawn polygon, or near a risk feature: grids, hazards, households",
    responses={403: {"description": "a relocation-list export asked for without the role"}},
)
def area_query(
    body: AreaQuery,
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Response:
    rules = settings.risk
    if body.feature is not None:
        area = areas.area_around_feature(
            conn, body.feature.kind, body.feature.code, body.distance_m, rules
        )
    else:
        area = areas.area_from_geojson(body.geometry, body.crs, body.repair, rules)
    personal = who.sees_personal_data
    if format == "csv" and not personal:
        raise Forbidden(
            "the relocation list holds names, phones and positions: coordinators and admins "
            "only. Without a coordinator token, ask for format=json (counts) or xlsx"
        )
    result = areas.area_query(conn, area, personal)
    if format == "csv":
        frame = areas.area_summary_frames(result)["relocation"]
        return _file(exports.to_csv(frame), "text/csv; charset=utf-8", "relocation.csv")
    if format == "xlsx":
        return _file(exports.to_xlsx(areas.area_summary_frames(result)), XLSX, "area_query.xlsx")
    if result["relocation"] is not None:
        result["relocation_total"] = len(result["relocation"])
        result["relocation"] = result["relocation"][: body.limit]
    return Response(orjson.dumps(result), media_type="application/json")
