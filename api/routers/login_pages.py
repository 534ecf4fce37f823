"""The login page and logging out of the pages: a session cookie (HttpOnly, SameSite=Lax,
Secure over https) that the pages and the maps accept.

The login form carries a pre-session CSRF token (double submit: a random cookie and the same
value in the form): without it another site's form could log a browser in as the attacker,
and SameSite=Lax does not stop a top-level POST.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import (
    SESSION_COOKIE,
    EngineDep,
    OptionalPrincipalDep,
    PlainQuery,
    SettingsDep,
    client_address,
    credentials,
    csrf_token,
)
from api.errors import error_response
from api.rate_limit import login_refusal
from api.routers.pages import html
from geo.errors import Forbidden, TooManyAttempts, Unauthorized
from geo.identity import login, tokens
from geo.settings import Settings
from web import pages
from web.pages import PageRequest
from web.templating import lang_url

router = APIRouter(tags=["pages"])
Lang = Literal["zh", "en"]
# Where going on after logging in would only come back here.
_NOT_NEXT = ("/login", "/logout")
FORM_COOKIE = "riskgrid_login_csrf"
# Time to come back to an open login page and type a password; a later submit gets the form
# again with a fresh token and a message.
FORM_TOKEN_TTL_S = 3600
_FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def safe_next(next_url: str | None) -> str:
    """Return where to go after logging in: a path of this site only, never another host.

    Browsers drop tabs and line breaks from an address and read a backslash as a slash, so
    `/\\tevil.example` or `/\\\\evil.example` would lead to another site: anything but a plain
    path answers the start page.
    """
    if not next_url or len(next_url) > 2000 or not next_url.startswith("/"):
        return "/"
    if any(c <= " " or c in "\\\x7f" for c in next_url):
        return "/"
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc or next_url.startswith("//"):
        return "/"
    if parts.path in _NOT_NEXT:
        return "/"
    return next_url


def _secure(request: Request, settings: Settings) -> bool:
    secure = settings.auth.cookie_secure
    return request.url.scheme == "https" if secure is None else secure


def _same(sent: str, expected: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 403).
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


def _login_page(
    request: Request,
    settings: Settings,
    lang: str,
    next_url: str,
    status: int = 200,
    error: str | None = None,
    username: str = "",
    wait_s: int = 0,
    headers: dict[str, str] | None = None,
    expired: bool = False,
) -> HTMLResponse:
    # The language switch keeps where the login goes on to.
    query = urlencode({"next": next_url}) if next_url != "/" else ""
    # The token already in the browser is kept: two open login tabs both still work.
    token = request.cookies.get(FORM_COOKIE, "")
    if not _FORM_TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    page = pages.login(
        PageRequest("/login", query, lang),
        next_url,
        "expired" if expired else error,
        username,
        wait_s,
        csrf=token,
    )
    answer = html(page, status, headers)
    answer.set_cookie(
        FORM_COOKIE,
        token,
        max_age=FORM_TOKEN_TTL_S,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
        path="/login",
    )
    return answer


def _locked(
    request: Request, settings: Settings, lang: str, next_url: str, username: str, wait: int
) -> HTMLResponse:
    headers = {"Retry-After": str(wait)}
    return _login_page(request, settings, lang, next_url, 429, "locked", username, wait, headers)


def _form(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


@router.get("/login", response_class=HTMLResponse, summary="The login page (zh/en)")
def login_page(
    request: Request,
    settings: SettingsDep,
    who: OptionalPrincipalDep,
    next: str = "/",
    lang: Lang = "zh",
) -> Response:
    target = safe_next(next)
    if who is not None:  # logged in already: straight on
        return RedirectResponse(target, status_code=303)
    return _login_page(request, settings, lang, target)


@router.post(
    "/login",
    response_class=HTMLResponse,
    summary="Log in from the login page: sets the session cookie and goes on to `next`",
    responses={
        303: {
            "description": "logged in: on to `next`, with the session cookie",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        401: _form("wrong username or password: the form again, with a message"),
        403: _form("the form's CSRF token is missing or old: the form again"),
        429: _form(
            "too many failed logins, or too many logins from this address: the form, with "
            "the wait (Retry-After)"
        ),
    },
)
def login_form(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64), PlainQuery] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    csrf: Annotated[str, Form(max_length=128)] = "",
    lang: Lang = "zh",
) -> Response:
    target = safe_next(next)
    if not _same(csrf, request.cookies.get(FORM_COOKIE, "")):
        return _login_page(request, settings, lang, target, 403, username=username, expired=True)
    refused = login_refusal(request)
    if refused is not None:  # before the password is checked (argon2: ~0.1 s a try)
        return _locked(request, settings, lang, target, username, refused.retry_after_s)
    try:
        session = login.log_in(
            engine, username, password, settings.auth, request.state.request_id,
            client_address(request),
        )  # fmt: skip
    except TooManyAttempts as exc:
        return _locked(request, settings, lang, target, username, exc.retry_after_s)
    if session is None:
        return _login_page(
            request, settings, lang, target, 401, "wrong", username,
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    answer = RedirectResponse(target, status_code=303)
    answer.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=session.expires_in,
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
        path="/",
    )
    # Logged in: the next login (after a logout) starts from a fresh form token.
    answer.delete_cookie(FORM_COOKIE, path="/login", httponly=True, samesite="strict")
    return answer


@router.post(
    "/logout",
    status_code=303,
    response_class=RedirectResponse,
    responses={403: error_response(403, "the form's CSRF token is missing or wrong")},
    summary="Log out of the pages: the session ends, back to the login page",
)
def logout_form(
    request: Request,
    engine: EngineDep,
    csrf: Annotated[str, Form(max_length=128)] = "",
    lang: Lang = "zh",
) -> Response:
    token, from_cookie = credentials(request)
    if token is not None and from_cookie:
        if not _same(csrf, csrf_token(token)):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page")
        with engine.begin() as conn:
            try:
                who = tokens.authenticate(conn, token)
            except Unauthorized:
                who = None  # expired already: only the cookie is left to clear
            if who is not None:
                who = who.in_request(request.state.request_id, client_address(request))
                tokens.revoke(conn, who, token)
    answer = RedirectResponse(lang_url("/login", "", lang), status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return answer
