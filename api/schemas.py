"""Request bodies. Every string has a max length and rejects NUL; coordinates must be finite."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from geo.coords import SourceCRS
from geo.reports.intake import NewReport
from geo.vocabulary import ReportStatus, ResolutionLevel, RiskKind


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
Text32 = Annotated[str, Field(max_length=32), NoNul]
Text2000 = Annotated[str, Field(max_length=2000), NoNul]


def _refuse_actor(data: Any, *fields: str) -> Any:
    """Refuse a body that names who acts: that is always the logged-in user."""
    for field in fields:
        if isinstance(data, dict) and field in data:
            raise ValueError(
                f"{field} is not accepted: the actor is who is logged in (the user of the "
                f"token); remove {field} from the body"
            )
    return data


Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class ReportCreate(BaseModel):
    """What a grid worker's phone sends."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID | None = Field(
        None, description="client-made UUID: resending it stores nothing new"
    )
    lon: Coordinate = Field(description="longitude in `crs`")
    lat: Coordinate = Field(description="latitude in `crs`")
    crs: SourceCRS = Field(
        SourceCRS.WGS84, description="wgs84, cgcs2000, gcj02 (Amap) or bd09 (Baidu)"
    )
    accuracy_m: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)] | None = None
    theme: Code
    category: Code
    severity: int = Field(2, ge=1, le=4, description="1 low … 4 urgent")
    description: Text2000 | None = None
    campaign: Text32 | None = None
    reported_at: datetime | None = Field(
        None, description="ISO 8601; no offset means the configured zone"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_reporter(cls, data: Any) -> Any:
        return _refuse_actor(data, "reporter", "actor")

    @model_validator(mode="after")
    def _ranges(self) -> ReportCreate:
        if not -90 <= self.lat <= 90:
            hint = (
                " — lon and lat look swapped; send lon first (e.g. lon=125.03, lat=46.59)"
                if -90 <= self.lon <= 90 and -180 <= self.lat <= 180
                else ""
            )
            raise ValueError(f"lat must be within -90..90 (got {self.lat}){hint}")
        if not -180 <= self.lon <= 180:
            raise ValueError(f"lon must be within -180..180 (got {self.lon})")
        return self

    def to_new(self, naive_timezone: str) -> NewReport:
        """The report for intake (its reporter is the logged-in user, set by intake); a
        `reported_at` without offset is read in `naive_timezone`."""
        reported_at = self.reported_at
        if reported_at is not None and reported_at.tzinfo is None:
            # The zone comes from the app's settings, which a validator cannot see.
            reported_at = reported_at.replace(tzinfo=ZoneInfo(naive_timezone))
        return NewReport(
            lon=self.lon,
            lat=self.lat,
            theme=self.theme,
            category=self.category,
            crs=self.crs.value,
            id=self.id,
            accuracy_m=self.accuracy_m,
            severity=self.severity,
            description=self.description,
            campaign=self.campaign,
            reported_at=reported_at,
        )


class TransitionCreate(BaseModel):
    """A move along the closed loop, made by the logged-in user."""

    model_config = ConfigDict(extra="forbid")

    to: ReportStatus = Field(description="the status to move to; GET /api/v1/themes lists moves")
    note: Text2000 | None = None
    level: ResolutionLevel | None = Field(
        None, description="where it was resolved (required with to=resolved)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_actor(cls, data: Any) -> Any:
        return _refuse_actor(data, "actor")


class ReassignCreate(BaseModel):
    """A dispatcher's manual reassignment, made by the logged-in user."""

    model_config = ConfigDict(extra="forbid")

    grid: Text32 = Field(description="code of the grid the report belongs to")
    note: Text2000 | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_actor(cls, data: Any) -> Any:
        return _refuse_actor(data, "actor")


class FeatureRef(BaseModel):
    """A stored risk feature, by kind and code."""

    model_config = ConfigDict(extra="forbid")

    kind: RiskKind
    code: Annotated[str, Field(min_length=1, max_length=64), NoNul]


class AreaQuery(BaseModel):
    """An area to look into: a drawn polygon, or the surroundings of a stored feature."""

    model_config = ConfigDict(extra="forbid")

    geometry: dict | None = Field(
        None, description="GeoJSON Polygon or MultiPolygon (a Feature is accepted too)"
    )
    crs: SourceCRS = Field(
        "wgs84", description="of the geometry's positions (gcj02 for a Gaode basemap)"
    )
    repair: bool = Field(True, description="repair an invalid polygon and say so; false: 422")
    feature: FeatureRef | None = None
    distance_m: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="with feature: the distance around it, in metres"
    )
    limit: Annotated[int, Field(ge=1, le=20_000)] = Field(
        1000, description="households listed in the JSON relocation list (exports list all)"
    )

    @model_validator(mode="after")
    def _one_area(self) -> AreaQuery:
        if (self.geometry is None) == (self.feature is None):
            raise ValueError(
                'send either "geometry" (a drawn polygon) or "feature" with "distance_m"'
            )
        return self
