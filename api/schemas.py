"""Request bodies, and the documented shapes of answers that are not JSON. Every string has a max
length and is plain text (no control characters but tab and newline, no bidi overrides); numbers
are finite and never booleans; times are ISO 8601."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)
from starlette.responses import Response

from geo.coords import SourceCRS
from geo.reports.intake import NewReport
from geo.vocabulary import ReportStatus, ResolutionLevel, RiskKind

# C0 controls but tab and newline, DEL, and the bidi embeddings, overrides and isolates: a NUL
# makes PostgreSQL fail the statement, and U+202E can show a worker "gnp.exe" as "exe.png".
_REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def refused_character(value: str) -> str | None:
    """Return why `value` is not plain text (which character, where), or None when it is."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    code = f"U+{ord(found.group()):04X}"
    if found.group() == "\x00":
        what = f"NUL ({code})"
    elif found.group() < "\x80":
        what = f"the control character {code}"
    else:
        what = f"the bidirectional control {code}"
    return f"must not contain {what} (at character {found.start()}); remove it"


def plain_text(value: str | None) -> str | None:
    """Return `value` unchanged, refusing control characters and bidi overrides."""
    if value is not None and (why := refused_character(value)) is not None:
        raise ValueError(why)
    return value


PlainText = AfterValidator(plain_text)
# pydantic reads a number, or a string like "0.5", as seconds since 1970: a time is sent as the
# ISO 8601 date-time the document promises, or refused.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def iso_time(value: object) -> object:
    """Return `value` unchanged if it is an ISO 8601 date-time (or None), else refuse it."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2024-08-22T08:00:00+08:00")
    return value


IsoTime = BeforeValidator(iso_time)
Text32 = Annotated[str, Field(max_length=32), PlainText]
Text2000 = Annotated[str, Field(max_length=2000), PlainText]


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
# Strict: JSON's true is not 1.0 (ints are still taken where a float is expected).
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Coordinate = Number


class ReportCreate(BaseModel):
    """What a grid worker's phone sends."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"lon": 125.01, "lat": 46.605, "theme": "fire", "category": "electrical"},
            ]
        },
    )

    id: uuid.UUID | None = Field(
        None, description="client-made UUID: resending it stores nothing new"
    )
    lon: Coordinate = Field(description="longitude in `crs`")
    lat: Coordinate = Field(description="latitude in `crs`")
    crs: SourceCRS = Field(
        SourceCRS.WGS84, description="wgs84, cgcs2000, gcj02 (Amap) or bd09 (Baidu)"
    )
    accuracy_m: Annotated[Number, Field(gt=0, le=100_000)] | None = None
    theme: Code
    category: Code
    severity: Annotated[int, Strict()] = Field(2, ge=1, le=4, description="1 low … 4 urgent")
    description: Text2000 | None = None
    campaign: Text32 | None = None
    reported_at: Annotated[datetime | None, IsoTime] = Field(
        None, description="ISO 8601; no offset means the configured zone"
    )
    on_site: Annotated[bool, Strict()] = Field(
        False,
        description="自行处置: the worker fixed it on the spot; stored resolved at level grid, "
        "for a dispatcher to verify once its `after` photo is uploaded",
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
            on_site=self.on_site,
        )


class TransitionCreate(BaseModel):
    """A move along the closed loop, made by the logged-in user (GET /api/v1/themes lists the
    moves, who makes them and what each needs)."""

    model_config = ConfigDict(extra="forbid")

    to: ReportStatus = Field(description="the status to move to; GET /api/v1/themes lists moves")
    note: Text2000 | None = None
    reason: Text2000 | None = Field(
        None, description="why: required to reject, to return (回退) and to send back (返工)"
    )
    level: ResolutionLevel | None = Field(
        None, description="where it was resolved (required with to=resolved)"
    )
    department: Annotated[str, Field(max_length=100), PlainText] | None = Field(
        None,
        description="with to=dispatched: a department of the routing table (default: "
        "the one the category routes to)",
    )
    handler: Annotated[str, Field(max_length=64), PlainText] | None = Field(
        None, description="with to=dispatched: the username of a user of that department"
    )
    duplicate_of: uuid.UUID | None = Field(
        None, description="with to=duplicate: the report it duplicates"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_actor(cls, data: Any) -> Any:
        return _refuse_actor(data, "actor")


class BulkTransitionCreate(TransitionCreate):
    """The same move for many reports (bulk accept, bulk dispatch to one department)."""

    ids: list[uuid.UUID] = Field(min_length=1, max_length=500, description="the reports")


class SupervisionCreate(BaseModel):
    """督办: a dispatcher's flag on a report that must not slip, with a note."""

    model_config = ConfigDict(extra="forbid")

    note: Text2000 | None = None


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
    code: Annotated[str, Field(min_length=1, max_length=64), PlainText]


class AreaQuery(BaseModel):
    """An area to look into: a drawn polygon, or the surroundings of a stored feature."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [
                            [[125.02, 46.58], [125.03, 46.58], [125.03, 46.59], [125.02, 46.58]]
                        ],
                    }
                },
            ]
        },
    )

    geometry: dict | None = Field(
        None, description="GeoJSON Polygon or MultiPolygon (a Feature is accepted too)"
    )
    crs: SourceCRS = Field(
        "wgs84", description="of the geometry's positions (gcj02 for a Gaode basemap)"
    )
    repair: Annotated[bool, Strict()] = Field(
        True, description="repair an invalid polygon and say so; false: 422"
    )
    feature: FeatureRef | None = None
    distance_m: Annotated[Number, Field(ge=0)] = Field(
        0.0, description="with feature: the distance around it, in metres (0, or at least 1)"
    )
    limit: Annotated[int, Strict(), Field(ge=1, le=20_000)] = Field(
        1000, description="households listed in the JSON relocation list (exports list all)"
    )

    @model_validator(mode="after")
    def _one_area(self) -> AreaQuery:
        if 0 < self.distance_m < 1:
            # A buffer of 1e-300 m is no area at all, and such radii upset GEOS.
            raise ValueError(
                f"distance_m must be 0 (the feature itself) or at least 1 metre "
                f"(got {self.distance_m:g})"
            )
        if (self.geometry is None) == (self.feature is None):
            raise ValueError(
                'send either "geometry" (a drawn polygon) or "feature" with "distance_m"'
            )
        return self


# Answers that are not JSON: FastAPI documents a route's 200 in its response class's media
# type, so a GeoJSON route names GeoJSONResponse and lists its other formats in `responses=`.
GEOJSON = "application/geo+json"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class GeoJSONResponse(Response):
    """A GeoJSON answer (RFC 7946's media type), its body assembled as bytes in geo."""

    media_type = GEOJSON


_GEOMETRY = {"type": ["object", "null"], "required": ["type"]}
FEATURE = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {"type": {"const": "Feature"}, "geometry": _GEOMETRY, "properties": {}},
}
FEATURE_COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": FEATURE},
    },
}
FILES: dict[str, dict[str, Any]] = {
    CSV: {"schema": {"type": "string"}},
    XLSX: {"schema": {"type": "string", "format": "binary"}},
}


def answers(schema: dict[str, Any], *files: str) -> dict[int | str, dict[str, Any]]:
    """Return `responses=` for a GeoJSON route's 200: `schema`, and each of `files` (CSV, XLSX)
    it answers with `format=`."""
    content = {GEOJSON: {"schema": schema}, **{media: FILES[media] for media in files}}
    return {200: {"content": content}}


def files(*media: str) -> dict[int | str, dict[str, Any]]:
    """Return `responses=` for a JSON route's 200 that also answers each of `media` files."""
    return {200: {"content": {m: FILES[m] for m in media}}}
