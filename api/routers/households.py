"""Households: counts per grid for every role; names, phones and positions within a scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ConnDep, OptionalCode, PlainQuery, PrincipalDep, SettingsDep, parse_bbox
from api.errors import error_response
from geo.errors import Forbidden
from geo.risk import households

router = APIRouter(prefix="/api/v1/households", tags=["households"])
NO_STORE = {"Cache-Control": "no-store"}


@router.get(
    "/by-grid",
    summary="Household and vulnerable-resident counts per grid (no names)",
    description=(
        "Workers get their grids' households, coordinators their districts' (all when "
        "unbound), admins all: exact counts, sent with `Cache-Control: no-store`. Planners, "
        "dispatchers and department staff get every grid with the counts from 1 to k-1 "
        "(`RISKGRID_AUTH__K_ANONYMITY`, default 5) withheld: such a count is `null` and its row "
        "has `suppressed: true`; when a row's `households` is withheld, all its counts are "
        "(even zeros). Every row carries `suppressed` (false when nothing is withheld)."
    ),
)
def by_grid(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    response: Response,
    district: OptionalCode = None,
) -> list[dict]:
    if who.sees_households:
        response.headers.update(NO_STORE)  # exact small counts of people
    return households.by_grid(conn, who, settings.auth.k_anonymity, district)


@router.get(
    "",
    summary="Households with names, phones and positions (admins, coordinators, workers)",
    description=(
        "Admins see every household, coordinators their districts' (all when unbound), workers "
        "their grids' (with the exclusive grids inside them); other roles get 403. Each read "
        "is audited as `personal_data.read` with the people shown (the members of the "
        "households listed), and answered with `Cache-Control: no-store`."
    ),
    responses={403: error_response(403, "the caller's role may not see personal data")},
)
def listing(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    response: Response,
    grid: OptionalCode = None,
    bbox: Annotated[str | None, Query(max_length=200), PlainQuery] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict:
    if not who.sees_households:
        raise Forbidden(
            "households' names, phones and positions are for admins, coordinators (their "
            "districts) and workers (their grids); GET /api/v1/households/by-grid gives the "
            "counts per grid"
        )
    box = parse_bbox(bbox, settings.limits.max_bbox_deg2)
    found = households.listing(conn, who, grid, box, limit, offset)
    conn.commit()  # the audit entry of the read, written in the same transaction
    response.headers.update(NO_STORE)
    return found
