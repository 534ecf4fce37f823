"""Campaigns (创安行动)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ConnDep
from geo.reports.campaigns import list_campaigns

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


@router.get("", summary="Every campaign with its theme and date window")
def campaigns(conn: ConnDep) -> list[dict]:
    return list_campaigns(conn)
