"""Households: counts per grid for everyone; names, phones and positions for coordinators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ConnDep, OptionalCode, PrincipalDep, SettingsDep, parse_bbox
from geo.errors import Forbidden
from geo.risk import households

router = APIRouter(prefix="/api/v1/households", tags=["households"])


@router.get("/by-grid", summary="Household and vulnerable-resident counts per grid (no names)")
def by_grid(conn: ConnDep, district: OptionalCode = None) -> list[dict]:
    return households.by_grid(conn, district)


@router.get(
    "",
    summary="Households with names, phones and positions (coordinators and admins)",
    responses={403: {"description": "the caller's role may not see personal data"}},
)
def listing(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    grid: OptionalCode = None,
    bbox: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    if not who.sees_personal_data:
        raise Forbidden(
            "households' names, phones and positions are for coordinators and admins; "
            "GET /api/v1/households/by-grid gives the counts per grid"
        )
    box = parse_bbox(bbox, settings.limits.max_bbox_deg2)
    return households.listing(conn, grid, box, limit, offset)
