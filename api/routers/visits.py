"""Visits (走访排查): a grid worker's visit for a campaign, with the checklist's answers, the
outreach handed out and the hazards found (each a report linked to the visit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from api.deps import CODE_PATTERN, EngineDep, PrincipalDep, SettingsDep
from api.errors import error_response
from api.schemas import Coordinate, IsoTime, Number, PlainText, ReportCreate
from geo.campaigns import visits
from geo.coords import SourceCRS

router = APIRouter(prefix="/api/v1/visits", tags=["visits"])

ItemCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
AnswerText = Annotated[str, Field(max_length=500), PlainText]
Answer = Annotated[bool, Strict()] | Number | AnswerText
Count = Annotated[int, Strict(), Field(ge=0, le=1_000_000)]


class VisitCreate(BaseModel):
    """What a grid worker's phone sends after a visit (queued offline like reports)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c1f7e-8d7a-4c1e-9d55-3f0d6c0b2a11",
                    "campaign": "CA11",
                    "lon": 125.12,
                    "lat": 46.55,
                    "answers": {"low_lying": True, "to_relocate": 2},
                    "leaflets": 3,
                    "reports": [{"lon": 125.12, "lat": 46.55, "theme": "flood",
                                 "category": "waterlogging"}],
                }
            ]
        },
    )  # fmt: skip
    id: uuid.UUID = Field(description="client-made UUID: resending it stores nothing new")
    campaign: Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_PATTERN)]
    lon: Coordinate = Field(description="longitude in `crs`")
    lat: Coordinate = Field(description="latitude in `crs`")
    crs: SourceCRS = Field(SourceCRS.WGS84, description="wgs84, cgcs2000, gcj02 or bd09")
    accuracy_m: Annotated[Number, Field(gt=0, le=100_000)] | None = None
    visited_at: Annotated[datetime | None, IsoTime] = Field(
        None, description="ISO 8601; no offset means the configured zone; default: now"
    )
    target: Annotated[str, Field(min_length=1, max_length=64), PlainText] | None = Field(
        None, description="the id or ref of the campaign target visited"
    )
    answers: Annotated[dict[ItemCode, Answer], Field(max_length=100)] = Field(
        default_factory=dict, description="checklist item code → answer"
    )
    leaflets: Count = 0
    stickers: Count = 0
    reports: Annotated[list[ReportCreate], Field(max_length=visits.MAX_REPORTS)] = Field(
        default_factory=list, description="hazards found, as POST /api/v1/reports takes them"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_visitor(cls, data: Any) -> Any:
        for name in ("visitor", "user", "user_id", "actor"):
            if isinstance(data, dict) and name in data:
                raise ValueError(
                    f"{name} is not accepted: the visitor is who is logged in; remove {name}"
                )
        return data

    @model_validator(mode="after")
    def _ranges(self) -> VisitCreate:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError(
                f"({self.lon}, {self.lat}) is not a position: lon within ±180, lat within ±90"
            )
        return self

    def to_new(self, naive_timezone: str) -> visits.NewVisit:
        """The visit for geo (its visitor is the logged-in user)."""
        at = self.visited_at
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo(naive_timezone))
        return visits.NewVisit(
            id=self.id,
            campaign=self.campaign,
            lon=self.lon,
            lat=self.lat,
            crs=self.crs.value,
            accuracy_m=self.accuracy_m,
            visited_at=at,
            target=self.target,
            answers=dict(self.answers),
            leaflets=self.leaflets,
            stickers=self.stickers,
            reports=tuple(r.to_new(naive_timezone) for r in self.reports),
        )


@router.post(
    "",
    status_code=201,
    summary="Record a visit (grid workers); answered with its grid and the reports it found",
    responses={
        200: {
            "description": "a replay: the visit stored earlier, unchanged",
            "content": {"application/json": {"schema": {}}},
        },
        404: error_response(404, "no such campaign"),
        409: error_response(
            409, "the id was used for another visit, or the campaign takes no visits now"
        ),
    },
)
def create_visit(
    body: VisitCreate, engine: EngineDep, settings: SettingsDep, who: PrincipalDep
) -> Response:
    new = body.to_new(settings.reports.naive_timezone)
    with engine.begin() as conn:
        found, created = visits.create(
            conn, new, settings.reports, settings.worktime, who, settings.auth.sensitive_themes
        )
    return Response(
        orjson.dumps(found), status_code=201 if created else 200, media_type="application/json"
    )
