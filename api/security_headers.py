"""Security headers on every answer: a Content-Security-Policy (a page's inline scripts run
only with the nonce of its own response), nosniff, no framing, no referrer outside the site,
and no geolocation or camera unless a page asks for them.

Each HTTP request gets a fresh nonce in `request.state.csp_nonce`; a page's inline scripts
carry it (web.folium_page.with_nonce). A route may send its own `Content-Security-Policy` or
`Permissions-Policy` (built with `page_policy` and `permissions_policy`): the middleware fills
in only what the answer does not already say.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo.settings import MapSettings, Settings

NONCE_KEY = "csp_nonce"

# JSON, files and everything else that is not a page: nothing to load, nowhere to be framed.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"

# Stylesheets from the site and <style> elements with the nonce; no style attributes in markup.
# Leaflet and the Folium plugins style through the CSSOM (`el.style.x = …`), which CSP leaves
# alone: Chromium reported no violation on any map once the legend's 6 swatches became SVG.
STYLE_SOURCES = ("'self'",)

# Where each built-in basemap's tiles come from (web.map_base._tiles writes the same hosts;
# tests/web/test_security_headers.py holds the two together).
TILE_HOSTS = {
    "osm": ("https://tile.openstreetmap.org",),
    "tianditu": ("http://*.tianditu.gov.cn",),
    "gaode": ("https://*.is.autonavi.com",),
}

# Features no page needs unless it says so (the phone page asks for geolocation).
FEATURES = ("camera", "geolocation", "microphone", "payment", "usb")


def tile_sources(maps: MapSettings) -> tuple[str, ...]:
    """Return the CSP sources of the configured basemap's tiles (none for `none`)."""
    if maps.basemap == "url" and maps.tile_url:
        parts = urlsplit(maps.tile_url)
        # A `{s}` subdomain template is any subdomain: CSP's wildcard is a whole first label.
        host = parts.netloc
        if "{s}" in host:
            host = "*." + host.split(".", 1)[1] if "." in host else "*"
        return (f"{parts.scheme}://{host}",)
    return TILE_HOSTS.get(maps.basemap, ())


def page_policy(
    nonce: str,
    img: tuple[str, ...] = (),
    style: tuple[str, ...] = STYLE_SOURCES,
    worker: tuple[str, ...] = (),
) -> str:
    """Return the Content-Security-Policy of a page whose inline scripts carry `nonce`; `style`
    holding 'unsafe-inline' lets in every inline style (a nonce beside it would void it)."""
    styles = " ".join(style if "'unsafe-inline'" in style else (*style, f"'nonce-{nonce}'"))
    images = " ".join(("'self'", "data:", "blob:", *img))
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src {styles}",
        f"img-src {images}",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    if worker:
        directives.append(f"worker-src {' '.join(worker)}")
    return "; ".join(directives)


def permissions_policy(*allowed: str) -> str:
    """Return a Permissions-Policy that gives this site the `allowed` features, no others."""
    return ", ".join(f"{f}=(self)" if f in allowed else f"{f}=()" for f in FEATURES)


def csp_nonce(request: Request) -> str:
    """Return this response's nonce (the middleware's, in `request.state`)."""
    return getattr(request.state, NONCE_KEY)


class SecurityHeaders:
    """Pure ASGI middleware (no body copy): the headers go onto the response's start."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.tiles = tile_sources(settings.maps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})[NONCE_KEY] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                self._add(MutableHeaders(scope=message), nonce)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add(self, headers: MutableHeaders, nonce: str) -> None:
        page = headers.get("content-type", "").startswith("text/html")
        policy = page_policy(nonce, self.tiles) if page else API_POLICY
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("Permissions-Policy", permissions_policy())
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"  # browsers older than frame-ancestors
