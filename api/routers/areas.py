"""The administrative hierarchy: city → district/county → street/township → community."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import CodePath, ConnDep
from api.errors import error_responses
from api.schemas import FEATURE, GeoJSONResponse, answers
from geo.grids import areas

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


@router.get("", summary="The area hierarchy with grid counts (no geometry)")
def area_tree(conn: ConnDep) -> list[dict]:
    return areas.tree(conn)


@router.get(
    "/{code}",
    summary="One area as a GeoJSON Feature with its children's codes",
    response_class=GeoJSONResponse,
    responses={**answers(FEATURE), **error_responses(404)},
)
def get_area(conn: ConnDep, code: CodePath) -> Response:
    return GeoJSONResponse(areas.feature_json(conn, code))
