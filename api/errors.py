"""Map riskgrid's exceptions to HTTP answers: JSON `{"detail": ...}` a person can act on."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from api.deps import LoginRequired
from geo.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
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
        if status >= 500 and not isinstance(exc, SetupError):
            log.exception("internal error", exc_info=exc)
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
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never echo str(exc): it can hold SQL, paths or data.
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)
