"""风险提示函 (risk letters): drafted by dispatchers and admins for one department from the
analysis of its remit, edited while a draft, issued with the year's next number and a reply
due, acknowledged and replied to (with attachments) by that department, closed by the sender.

Read by dispatchers (a district dispatcher: the letters of their districts), the department
addressed (once issued), planners and admins; workers and coordinators read none (403).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CODE_PATTERN, ConnDep, EngineDep, PlainQuery, PrincipalDep, SettingsDep
from api.errors import error_response, error_responses
from api.schemas import Code, IsoTime, PlainText
from geo.letters import attachments, drafting, moves, stats, store
from geo.letters.attachments import Upload
from geo.letters.remit import LetterScope
from geo.letters.status import LetterStatus
from web.letter import letter_html, letter_pdf

router = APIRouter(prefix="/api/v1/letters", tags=["letters"])
NO_STORE = {"Cache-Control": "no-store"}
Department = Annotated[str, Field(min_length=1, max_length=100), PlainText]
District = Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_PATTERN)]
Subject = Annotated[str, Field(min_length=1, max_length=200), PlainText]
# Plain text, tabs and newlines kept: the letter's paragraphs.
Paragraphs = Annotated[str, Field(max_length=20_000), PlainText]
_LETTER = {
    "content": {
        "application/json": {
            "schema": {"type": "object", "required": ["id", "status", "department", "moves"]}
        }
    }
}
_MOVED = {200: {"description": "the letter after the move", **_LETTER}, **error_responses(404, 409)}
_REFUSED: dict[type[Exception], int] = {attachments.TooLarge: 413, attachments.UnsupportedType: 415}


class LetterCreate(BaseModel):
    """What a letter analyses: a department of the routing table, and optionally a campaign,
    a theme, districts and a period (default: the campaign's dates, else the last 90 days)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "department": "住房和城乡建设局",
                    "theme": "gas",
                    "districts": ["230604"],
                    "since": "2024-06-01T00:00:00+08:00",
                    "until": "2024-09-01T00:00:00+08:00",
                }
            ]
        },
    )
    department: Department
    campaign: Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_PATTERN)] | None = None
    theme: Code | None = None
    districts: Annotated[list[District], Field(max_length=50)] = Field(default_factory=list)
    since: Annotated[datetime | None, IsoTime] = None
    until: Annotated[datetime | None, IsoTime] = None

    def scope(self) -> LetterScope:
        """Return the scope asked for (checked and completed by geo.letters.remit)."""
        return LetterScope(
            self.department,
            self.campaign,
            self.theme,
            tuple(self.districts),
            self.since,
            self.until,
        )


class LetterEdit(BaseModel):
    """A draft's texts; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    subject: Subject | None = None
    opening: Paragraphs | None = None
    recommendations: Paragraphs | None = Field(
        None, description="the recommended actions (工作建议), one per line"
    )
    closing: Paragraphs | None = None


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=NO_STORE
    )


@router.post(
    "",
    status_code=201,
    summary="Draft a letter to a department from the analysis of its remit",
    responses={201: {"description": "the draft", **_LETTER}, **error_responses(422)},
)
def create_letter(
    engine: EngineDep, settings: SettingsDep, who: PrincipalDep, body: LetterCreate
) -> Response:
    return _json(drafting.draft(engine, body.scope(), who, settings), 201)


@router.get("", summary="Letters you may see, newest first")
def list_letters(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    status: LetterStatus | None = None,
    department: Annotated[str | None, Query(max_length=100), PlainQuery] = None,
    overdue: Annotated[
        bool | None, Query(description="waiting for a reply past its due time")
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    size = min(limit or settings.limits.default_page_size, settings.limits.max_page_size)
    return _json(store.listing(conn, who, status, department, overdue, size, offset))


@router.get("/stats", summary="按期回复率 per department: replied on time / issued and due")
def letter_stats(
    conn: ConnDep,
    who: PrincipalDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Response:
    return _json(stats.reply_stats(conn, who, year))


@router.get(
    "/{letter_id}",
    summary="One letter, as JSON, HTML or PDF",
    response_class=Response,
    responses={
        200: {
            "description": "the letter",
            "content": {
                "application/json": _LETTER["content"]["application/json"],
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **error_responses(404),
    },
)
def get_letter(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    letter_id: uuid.UUID,
    format: Literal["json", "html", "pdf"] = "json",
) -> Response:
    if format == "json":
        return _json(store.get(conn, letter_id, who))
    letter = store.get(conn, letter_id, who, with_map=True)
    zone = settings.worktime.timezone
    if format == "html":
        return HTMLResponse(letter_html(letter, zone), headers=NO_STORE)
    name = f"letter-{letter['year']}-{letter['sequence']}" if letter["year"] else "letter-draft"
    headers = {**NO_STORE, "Content-Disposition": f'inline; filename="{name}.pdf"'}
    return Response(letter_pdf(letter, zone), media_type="application/pdf", headers=headers)


@router.patch(
    "/{letter_id}",
    summary="Edit a draft's texts (subject, opening, recommendations, closing)",
    responses=_MOVED,
)
def edit_letter(
    engine: EngineDep, who: PrincipalDep, letter_id: uuid.UUID, body: LetterEdit
) -> Response:
    return _json(store.edit(engine, letter_id, who, body.model_dump(exclude_unset=True)))


@router.post(
    "/{letter_id}/issue",
    summary="Issue a draft: the year's next number, a reply due; frozen from then on",
    responses=_MOVED,
)
def issue_letter(
    engine: EngineDep, settings: SettingsDep, who: PrincipalDep, letter_id: uuid.UUID
) -> Response:
    return _json(moves.issue(engine, letter_id, who, settings))


@router.post(
    "/{letter_id}/acknowledge",
    summary="签收: the department addressed has the letter",
    responses=_MOVED,
)
def acknowledge_letter(engine: EngineDep, who: PrincipalDep, letter_id: uuid.UUID) -> Response:
    return _json(moves.acknowledge(engine, letter_id, who))


@router.post(
    "/{letter_id}/reply",
    summary="The department's reply (整改情况), with PDF, JPEG or PNG attachments",
    responses={
        **_MOVED,
        400: error_response(400, "the body is not valid multipart/form-data"),
        413: error_response(413, "an attachment is over the size limit"),
        415: error_response(415, "an attachment is not a PDF, JPEG or PNG (by its content)"),
    },
)
def reply_letter(
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    letter_id: uuid.UUID,
    text: Annotated[str, Form(min_length=1, max_length=20_000, description="整改情况"), PlainQuery],
    files: Annotated[list[UploadFile] | None, File(description="PDF, JPEG or PNG")] = None,
) -> Response:
    limit = settings.letters.max_attachment_bytes
    # One byte over the limit is enough to refuse; the body limit at the door bounds the rest.
    uploads = [Upload(f.filename or "", f.file.read(limit + 1)) for f in files or []]
    try:
        answer = moves.reply(
            engine, attachments.store_for(settings), letter_id, who, text, uploads, settings
        )
    except (attachments.TooLarge, attachments.UnsupportedType) as exc:
        return JSONResponse({"detail": str(exc)}, status_code=_REFUSED[type(exc)])
    return _json(answer)


@router.post(
    "/{letter_id}/close", summary="办结: the sender closes a replied letter", responses=_MOVED
)
def close_letter(engine: EngineDep, who: PrincipalDep, letter_id: uuid.UUID) -> Response:
    return _json(moves.close(engine, letter_id, who))


@router.get(
    "/{letter_id}/attachments/{attachment_id}",
    summary="An attachment of a letter's reply",
    response_class=Response,
    responses={
        200: {
            "description": "the file as sent",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in ("application/pdf", "image/jpeg", "image/png")
            },
        },
        **error_responses(404),
    },
)
def get_attachment(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    letter_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> Response:
    store.get_row(conn, letter_id, who)
    path, media, name = attachments.served(
        conn, attachments.store_for(settings), letter_id, attachment_id
    )
    return FileResponse(path, media_type=media, filename=name, headers=NO_STORE)
