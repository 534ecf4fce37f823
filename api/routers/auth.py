"""Logging in and out: tokens for the API (OAuth2 password form), and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from api.deps import (
    EngineDep,
    PlainQuery,
    PrincipalDep,
    SettingsDep,
    client_address,
    credentials,
)
from api.errors import error_response
from api.rate_limit import login_refusal
from geo.errors import TooManyAttempts, Unauthorized
from geo.identity import login, tokens

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

WRONG = "wrong username or password"


@router.post(
    "/token",
    summary="Log in with a username and password (OAuth2 password form); answers a token",
    responses={
        401: error_response(401, WRONG),
        429: error_response(
            429,
            "too many failed logins for this username or address, or too many logins from "
            "this address (RISKGRID_RATES__LOGIN)",
        ),
    },
)
def token(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    username: Annotated[str, Form(min_length=1, max_length=64), PlainQuery],
    password: Annotated[str, Form(min_length=1, max_length=256)],
) -> dict:
    # Before the password is checked: the limit spares the argon2 work (~0.1 s a try) too.
    refused = login_refusal(request)
    if refused is not None:
        raise TooManyAttempts(refused.detail, refused.retry_after_s)
    session = login.log_in(
        engine, username, password, settings.auth, request.state.request_id,
        client_address(request),
    )  # fmt: skip
    if session is None:  # the failure is committed: it counts toward the lockout
        raise Unauthorized(WRONG)
    return {
        "access_token": session.token,
        "token_type": "bearer",
        "expires_in": session.expires_in,
        "username": session.who.username,
        "role": session.who.role,
    }


@router.post("/logout", status_code=204, summary="Revoke the token this request carries")
def logout(request: Request, who: PrincipalDep, engine: EngineDep) -> Response:
    sent, _ = credentials(request)
    with engine.begin() as conn:
        tokens.revoke(conn, who, sent or "")
    return Response(status_code=204)


@router.get("/me", summary="Who the token belongs to, with role and scope")
def me(who: PrincipalDep) -> dict:
    return {
        "username": who.username,
        "name": who.name,
        "role": who.role,
        "grids": list(who.grids),
        "districts": list(who.districts),
        "department": who.department,
    }
