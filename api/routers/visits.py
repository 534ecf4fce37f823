"""Visits (走访排查): a grid worker's visit for a campaign, with the checklist's answers, the
outreach handed out and the hazards found (each a report linked to the visit), and its photos.

Who reads a visit and its photos: geo.campaigns.visits.scope_condition, and for a visit to a
household the roles that see that household (its reads audited, never cached).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, File, Header, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from api.deps import CODE_PATTERN, ConnDep, EngineDep, PrincipalDep, SettingsDep
from api.errors import error_response, error_responses
from api.schemas import Coordinate, IsoTime, Number, PlainText, ReportCreate
from geo.campaigns import visit_photos, visits
from geo.coords import SourceCRS
from geo.photo_store import store_for
from geo.reports import photos

router = APIRouter(prefix="/api/v1/visits", tags=["visits"])
# As report photos (api/routers/photos.py): private, an hour, revalidated by the ETag. A
# household visit's photo is personal data: never kept, each read audited.
CACHE = "private, max-age=3600"
NO_STORE = {"Cache-Control": "no-store"}
_PERSONAL = (
    "a visit to a household target is personal data (shown to its visitor and the roles that "
    "see the household)"
)
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE = {
    200: {
        "description": "the image, EXIF-free",
        "content": {t: _BINARY for t in ("image/jpeg", "image/png", "image/webp")},
    },
    304: {"description": "unchanged since the ETag sent in If-None-Match"},
    403: error_response(403, _PERSONAL),
    **error_responses(404),
}
_PHOTO = {"schema": {"type": "object", "required": ["id", "url", "thumb_url", "flags"]}}
_REFUSED: dict[type[Exception], int] = {photos.TooLarge: 413, photos.UnsupportedType: 415}

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


def _json(body: object, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


@router.get(
    "/{visit_id}",
    summary="A visit with its grid, answers, reports and photos (whoever may read it)",
    description=(
        "Admins and planners read every visit, dispatchers and coordinators their districts' "
        "(all when unbound), a department the visits of the campaigns it is a partner in, a "
        "worker their own and their grids'; another visit answers 404. A visit to a household "
        "target is personal data: its visitor, admins, coordinators (their districts) and "
        "workers (their grids) read it, each read audited as `personal_data.read` and answered "
        "`Cache-Control: no-store`; other roles get 403."
    ),
    responses={403: error_response(403, _PERSONAL), **error_responses(404)},
)
def get_visit(conn: ConnDep, who: PrincipalDep, visit_id: uuid.UUID) -> Response:
    found, personal = visits.read(conn, who, visit_id)
    if personal:
        conn.commit()  # the audit entry of the read
    return _json(found, 200, NO_STORE if personal else None)


@router.post(
    "/{visit_id}/photos",
    status_code=201,
    summary="Add a photo to a visit (JPEG, PNG or WebP; its visitor or an admin)",
    description=(
        "Checked and stored as a report's photo: the type by content, the size and pixel "
        "limits, EXIF read then dropped, re-encoded, stored by content hash. Set against the "
        "visit: `exif_distance_m` from its point, `exif_time_diff_h` from its `visited_at`; "
        "`flags`: `no_exif`, `far_from_visit`, `time_off`, `reused` (the same picture on "
        "another visit). At most `photos.max_per_visit` photos a visit (10 by default)."
    ),
    responses={
        201: {"description": "stored", "content": {"application/json": _PHOTO}},
        200: {
            "description": "the same file was sent to this visit before: that photo",
            "content": {"application/json": _PHOTO},
        },
        400: error_response(400, "the body is not valid multipart/form-data"),
        403: error_response(403, "not the visit's visitor nor an admin"),
        **error_responses(404),
        409: error_response(409, "the visit has the most photos it takes"),
        413: error_response(413, "the file is over the photo size limit"),
        415: error_response(415, "not a JPEG, PNG or WebP image (judged by its content)"),
    },
)
def upload_visit_photo(
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    visit_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="the photo: JPEG, PNG or WebP")],
) -> Response:
    # One byte over the limit is enough to refuse; the body limit at the door bounds the rest.
    data = file.file.read(settings.photos.max_bytes + 1)
    try:
        answer, created = visit_photos.upload(
            engine, store_for(settings), visit_id, data, who, settings
        )
    except (photos.TooLarge, photos.UnsupportedType) as exc:
        return JSONResponse({"detail": str(exc)}, status_code=_REFUSED[type(exc)])
    return _json(answer, 201 if created else 200)


IfNoneMatch = Annotated[str | None, Header(max_length=1000)]


def _serve(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    visit_id: uuid.UUID,
    photo_id: uuid.UUID,
    thumb: bool,
    if_none_match: str | None,
) -> Response:
    store = store_for(settings)
    path, media, digest, personal = visit_photos.served(conn, store, who, visit_id, photo_id, thumb)
    if personal:  # every read of it is audited, so none is answered from a cache
        conn.commit()
        return FileResponse(path, media_type=media, headers=NO_STORE)
    headers = {"Cache-Control": CACHE, "ETag": f'"{digest}"'}
    if if_none_match and digest in if_none_match:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media, headers=headers)


@router.get(
    "/{visit_id}/photos/{photo_id}",
    summary="A visit's photo as served: re-encoded, turned upright, no EXIF",
    response_class=Response,
    responses=_IMAGE,
)
def get_visit_photo(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    visit_id: uuid.UUID,
    photo_id: uuid.UUID,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return _serve(conn, settings, who, visit_id, photo_id, False, if_none_match)


@router.get(
    "/{visit_id}/photos/{photo_id}/thumb",
    summary="A visit's photo's thumbnail (WebP)",
    response_class=Response,
    responses=_IMAGE,
)
def get_visit_thumb(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    visit_id: uuid.UUID,
    photo_id: uuid.UUID,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return _serve(conn, settings, who, visit_id, photo_id, True, if_none_match)
