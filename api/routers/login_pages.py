"""The login page and logging out of the pages: a session cookie (HttpOnly, SameSite=Lax,
Secure over https) that the pages and the maps accept."""

from __future__ import annotations

import hmac
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
from api.routers.pages import html
from geo.errors import Forbidden, TooManyAttempts, Unauthorized
from geo.identity import login, tokens
from web import pages
from web.pages import PageRequest
from web.templating import lang_url

router = APIRouter(tags=["pages"])
Lang = Literal["zh", "en"]
# Where going on after logging in would only come back here.
_NOT_NEXT = ("/login", "/logout")


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


def _login_page(
    lang: str,
    next_url: str,
    status: int = 200,
    error: str | None = None,
    username: str = "",
    wait_s: int = 0,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    # The language switch keeps where the login goes on to.
    query = urlencode({"next": next_url}) if next_url != "/" else ""
    page = pages.login(PageRequest("/login", query, lang), next_url, error, username, wait_s)
    return html(page, status, headers)


@router.get("/login", response_class=HTMLResponse, summary="The login page (zh/en)")
def login_page(who: OptionalPrincipalDep, next: str = "/", lang: Lang = "zh") -> Response:
    target = safe_next(next)
    if who is not None:  # logged in already: straight on
        return RedirectResponse(target, status_code=303)
    return _login_page(lang, target)


@router.post(
    "/login",
    response_class=HTMLResponse,
    summary="Log in from the login page: sets the session cookie and goes on to `next`",
    responses={
        401: {"description": "wrong username or password: the form again, with a message"},
        429: {"description": "too many failed logins: the form, with the wait (Retry-After)"},
    },
)
def login_form(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64), PlainQuery] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    lang: Lang = "zh",
) -> Response:
    target = safe_next(next)
    try:
        session = login.log_in(
            engine, username, password, settings.auth, request.state.request_id,
            client_address(request),
        )  # fmt: skip
    except TooManyAttempts as exc:
        wait = exc.retry_after_s
        return _login_page(lang, target, 429, "locked", username, wait, {"Retry-After": str(wait)})
    if session is None:
        return _login_page(
            lang, target, 401, "wrong", username, headers={"WWW-Authenticate": "Bearer"}
        )
    answer = RedirectResponse(target, status_code=303)
    secure = settings.auth.cookie_secure
    answer.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=session.expires_in,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" if secure is None else secure,
        path="/",
    )
    return answer


@router.post("/logout", summary="Log out of the pages: the session ends, back to the login page")
def logout_form(
    request: Request,
    engine: EngineDep,
    csrf: Annotated[str, Form(max_length=128)] = "",
    lang: Lang = "zh",
) -> Response:
    token, from_cookie = credentials(request)
    if token is not None and from_cookie:
        if not hmac.compare_digest(csrf, csrf_token(token)):
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
