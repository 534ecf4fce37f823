"""Photo evidence: a report's photos in (multipart), and served back without EXIF.

Who may add one: the reporter and the grid's worker, the department the report is dispatched
to, dispatchers of its district and administrators (`geo.reports.photos.UPLOAD_ROLES` within
the report scope). Who may see one: whoever sees its report unmasked; a read of a sensitive
report's photo is audited (`personal_data.read`) and never cached.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Form, Header, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from api.deps import ConnDep, EngineDep, PrincipalDep, SettingsDep
from api.errors import error_response, error_responses
from geo.identity.scope import report_scope
from geo.photo_store import store_for
from geo.reports import photos, reads
from geo.vocabulary import PhotoKind

router = APIRouter(prefix="/api/v1", tags=["photos"])
# Private: a photo may show people and homes; an hour, then revalidated by its ETag (a content
# hash), so that a reader who loses the report's scope stops seeing it soon after.
CACHE = "private, max-age=3600"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE = {
    200: {
        "description": "the image, EXIF-free",
        "content": {t: _BINARY for t in ("image/jpeg", "image/png", "image/webp")},
    },
    304: {"description": "unchanged since the ETag sent in If-None-Match"},
    **error_responses(404),
}
_PHOTO = {"schema": {"type": "object", "required": ["id", "kind", "url", "thumb_url", "flags"]}}
_REFUSED: dict[type[Exception], int] = {photos.TooLarge: 413, photos.UnsupportedType: 415}


def _json(body: Any, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.post(
    "/reports/{report_id}/photos",
    status_code=201,
    summary="Add a photo to a report (JPEG, PNG or WebP); its EXIF is read, then dropped",
    responses={
        201: {"description": "stored", "content": {"application/json": _PHOTO}},
        200: {
            "description": "the same file was sent to this report before: that photo",
            "content": {"application/json": _PHOTO},
        },
        400: error_response(400, "the body is not valid multipart/form-data"),
        **error_responses(404),
        409: error_response(409, "the report is closed or has the most photos it takes"),
        413: error_response(413, "the file is over the photo size limit"),
        415: error_response(415, "not a JPEG, PNG or WebP image (judged by its content)"),
    },
)
def upload_photo(
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    report_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="the photo: JPEG, PNG or WebP")],
    kind: Annotated[PhotoKind, Form(description="site 现场, before, after 处置后, check 核查")],
) -> Response:
    # One byte over the limit is enough to refuse; the body limit at the door bounds the rest.
    data = file.file.read(settings.photos.max_bytes + 1)
    try:
        answer, created = photos.upload(
            engine, store_for(settings), report_id, kind, data, who, settings
        )
    except (photos.TooLarge, photos.UnsupportedType) as exc:
        return JSONResponse({"detail": str(exc)}, status_code=_REFUSED[type(exc)])
    return _json(answer, 201 if created else 200)


def _serve(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    photo_id: uuid.UUID,
    thumb: bool,
    if_none_match: str | None,
) -> Response:
    sensitive = settings.auth.sensitive_themes
    scope = report_scope(who, sensitive)
    path, media, digest, report = photos.served(conn, store_for(settings), photo_id, scope, thumb)
    if reads.record_report(conn, who, scope, sensitive, report):
        # A sensitive report's photo shown to a reader with the right: every read is audited,
        # so none is answered from a cache.
        conn.commit()
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-store"})
    headers = {"Cache-Control": CACHE, "ETag": f'"{digest}"'}
    if if_none_match and digest in if_none_match:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media, headers=headers)


IfNoneMatch = Annotated[str | None, Header(max_length=1000)]


@router.get(
    "/photos/{photo_id}",
    summary="A photo as served: re-encoded, turned upright, no EXIF",
    response_class=Response,
    responses=_IMAGE,
)
def get_photo(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    photo_id: uuid.UUID,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return _serve(conn, settings, who, photo_id, False, if_none_match)


@router.get(
    "/photos/{photo_id}/thumb",
    summary="A photo's thumbnail (WebP)",
    response_class=Response,
    responses=_IMAGE,
)
def get_thumb(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    photo_id: uuid.UUID,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return _serve(conn, settings, who, photo_id, True, if_none_match)
