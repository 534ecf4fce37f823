"""Map riskgrid's exceptions to HTTP answers: JSON `{"detail": ...}` a person can act on."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from api import request_id
from api.deps import LoginRequired
from geo.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OverBudget,
    RiskgridError,
    SetupError,
    TooManyAttempts,
    Unauthorized,
)

log = logging.getLogger("riskgrid.api")

STATUS: dict[type[RiskgridError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    Conflict: 409,
    Unauthorized: 401,
    Forbidden: 403,
    SetupError: 503,
    TooManyAttempts: 429,
    OverBudget: 503,
}


def _status(exc: RiskgridError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def _describe(err: dict) -> str:
    if err.get("type") == "json_invalid":
        return _describe_json(err)
    full = err.get("loc", ())
    loc = [str(p) for p in full if p not in ("query", "path", "body", "header")]
    where = ".".join(loc) or ("body" if tuple(full) == ("body",) else "request")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    # A value is echoed so the sender sees what was wrong, never a password.
    secret = any("password" in part for part in loc)
    scalar = isinstance(err.get("input"), str | int | float | bool) and not secret
    if loc and scalar and err.get("type") != "missing":
        return f"{where}: {msg} (got {err['input']!r})"
    return f"{where}: {msg}"


def _describe_json(err: dict) -> str:
    # FastAPI puts the character offset in loc and json's own message in ctx.error.
    pos = next((p for p in reversed(err.get("loc", ())) if isinstance(p, int)), None)
    why = (err.get("ctx") or {}).get("error") or "not valid JSON"
    at = f" at character {pos}" if pos is not None else ""
    return f"body: not valid JSON{at}: {why}; send a JSON object (Content-Type: application/json)"


def _describe_undecodable(exc: UnicodeDecodeError) -> str:
    return (
        f"body: not UTF-8: byte 0x{exc.object[exc.start]:02x} at byte {exc.start} cannot be "
        "decoded; send the JSON encoded as UTF-8"
    )


def describe_validation(errors: list) -> str:
    """Return pydantic errors as one sentence a person can act on."""
    return "; ".join(_describe(e) for e in errors) or "invalid request"


def install(app: FastAPI) -> None:
    """Install the exception handlers on `app`."""

    @app.exception_handler(RiskgridError)
    async def riskgrid_error(_: Request, exc: RiskgridError) -> JSONResponse:
        status = _status(exc)
        if status >= 500 and not isinstance(exc, SetupError | OverBudget):
            log.error("internal error: %s", type(exc).__name__, exc_info=exc)
            return JSONResponse({"detail": "internal error"}, status_code=status)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    @app.exception_handler(LoginRequired)
    async def login_required(_: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?{urlencode({'next': exc.next_url})}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        detail = describe_validation(errors)
        safe = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in errors
        ]
        return JSONResponse({"detail": detail, "errors": safe}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # FastAPI answers a body it cannot decode with a bare 400 "error parsing the body".
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
            detail = _describe_undecodable(cause)
            error = {"loc": ["body", cause.start], "msg": detail, "type": "json_invalid"}
            return JSONResponse({"detail": detail, "errors": [error]}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(OperationalError)
    async def database_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"}, status_code=503
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers this outside every middleware (RequestId too), then re-raises it to
        # the server: bind the id for this task's remaining lines and echo it here.
        rid = getattr(request.state, "request_id", None)
        if rid:
            request_id.bind(rid)
        # Logged once, here: riskgrid.logs drops the server's repeat and withholds database
        # messages. Never echo str(exc): it can hold SQL, paths or data.
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        headers = {request_id.HEADER.decode(): rid} if rid else None
        return JSONResponse({"detail": "internal error"}, status_code=500, headers=headers)


# The documentation side: one body for every error answer, and the `responses=` saying so.


class FieldError(BaseModel):
    """One refused part of a request (a 422 from parsing)."""

    loc: list[str | int] = Field(
        description='where: "query", "path", "header" or "body", then the field'
    )
    msg: str
    type: str = Field(description="what kind of error: missing, int_parsing, json_invalid, …")


class ErrorBody(BaseModel):
    """The body of every error answer: what was wrong, in words a person can act on."""

    detail: str
    errors: list[FieldError] = Field(
        default=[], description="with a 422 from parsing the request: each refused part"
    )


ERROR_BODY = "#/components/schemas/ErrorBody"
WHY: dict[int, str] = {
    400: "the request cannot be answered as sent",
    401: "no login, or the token is unknown, expired or revoked",
    403: "the caller's role may not do this (or a session's write lacks its X-CSRF-Token)",
    404: "not found, or not within the caller's scope",
    408: "the request body did not arrive within the server's body timeout",
    409: "conflicts with what is stored",
    413: "the request body is larger than the server accepts",
    422: "a parameter or the body was refused; `detail` says which and why",
    429: "too many requests or failed logins: wait `Retry-After` seconds",
    503: "the database is unavailable, the server is saturated, or a computation ran past its "
    "time budget: try again (after `Retry-After` seconds when given)",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


def error_response(status: int, description: str | None = None) -> dict[str, Any]:
    """Return the OpenAPI response of error `status`: an ErrorBody as JSON, with its headers."""
    answer: dict[str, Any] = {
        "description": description or WHY[status],
        # Named, not a `model`: FastAPI files a model under the route's own media type, which
        # for a GeoJSON or HTML route is not what an error answers.
        "content": {"application/json": {"schema": {"$ref": ERROR_BODY}}},
    }
    if status in _HEADERS:
        answer["headers"] = _HEADERS[status]
    return answer


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return FastAPI `responses=` documenting an ErrorBody for each of `statuses`."""
    return {status: error_response(status) for status in statuses}


# What any route can answer: the door (408, 413, 429, 503 from the middleware), parsing (422),
# and for a logged-in route the login (401) and the role or CSRF check (403).
OPEN_ROUTE = error_responses(408, 413, 422, 429, 503)
LOGGED_IN_ROUTE = error_responses(401, 403, 408, 413, 422, 429, 503)
# A page sends a browser without a login to the login page (login_required above).
PAGE_ROUTE: dict[int | str, dict[str, Any]] = {
    303: {
        "description": "not logged in: on to /login, which comes back here",
        "headers": {"Location": {"description": "/login?next=…", "schema": {"type": "string"}}},
    },
    **OPEN_ROUTE,
}


def document(app: FastAPI) -> None:
    """Add ErrorBody to `app`'s OpenAPI components, where every error response refers to it."""
    build = app.openapi
    _, found = models_json_schema(
        [(ErrorBody, "serialization")], ref_template="#/components/schemas/{model}"
    )

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's, cached until the routes change
        schema.setdefault("components", {}).setdefault("schemas", {}).update(found["$defs"])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
