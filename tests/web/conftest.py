"""A live riskgrid server on the demo database, for tests that drive Chromium, and browser
contexts logged in with a session cookie."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from api.app import create_app
from api.deps import SESSION_COOKIE
from tests.factories import login_as
from web.browser import launch

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port in a thread; yield its base address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def live_server(demo_database):
    settings, engine, _ = demo_database
    with serving(create_app(settings, engine=engine)) as base:
        yield base


@pytest.fixture(scope="module")
def admin_token(demo_engine) -> str:
    """A session token of an administrator on the demo database (what the pages' cookie holds)."""
    return login_as(demo_engine, "admin", username="web-admin")


def session_cookie(base: str, token: str) -> dict:
    """Return the session cookie of `token` for the live server at `base`, as /login sets it."""
    return {
        "name": SESSION_COOKIE,
        "value": token,
        "url": base,
        "httpOnly": True,
        "sameSite": "Lax",
    }


_CHROMIUM: dict = {}


def chromium():
    """Return the module's Chromium, started on first use: each test opens contexts of its own
    (cookies, storage and service workers apart) and closes them. A browser per test cost
    about a second each, forty times over."""
    if "browser" not in _CHROMIUM:
        from playwright.sync_api import sync_playwright

        _CHROMIUM["playwright"] = sync_playwright().start()
        _CHROMIUM["browser"] = launch(_CHROMIUM["playwright"])
    return _CHROMIUM["browser"]


@pytest.fixture(scope="module", autouse=True)
def _stop_chromium() -> Iterator[None]:
    # After each module: Playwright's event loop in this thread would refuse the asyncio.run
    # of a test that runs after it (tests/api/test_body_limit.py) in any order of the files.
    yield
    if "browser" in _CHROMIUM:
        _CHROMIUM.pop("browser").close()
        _CHROMIUM.pop("playwright").stop()


PHONE = {"width": 390, "height": 800}


def phone_context(base: str, token: str, lon: float, lat: float):
    """Return (context, page) of a phone logged in with `token`'s session cookie, its GPS at
    (lon, lat) and allowed to the pages."""
    context = chromium().new_context(
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
        permissions=["geolocation"],
        viewport=PHONE,
    )
    context.add_cookies([session_cookie(base, token)])
    return context, context.new_page()


@contextlib.contextmanager
def offline_page(
    base: str, token: str | None = None, **context: object
) -> Iterator[tuple[object, list, list]]:
    """Yield (page, requests sent outside `base`, console and page errors) in Chromium, logged
    in with the session cookie of `token` (none: not logged in).

    Every request that does not go to `base` is recorded and aborted: the page must work on
    an intranet with no internet.
    """
    outside: list[str] = []
    errors: list[str] = []
    ctx = chromium().new_context(**context)
    if token is not None:
        ctx.add_cookies([session_cookie(base, token)])
    page = ctx.new_page()

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page, outside, errors
    finally:
        ctx.close()
