"""Security headers on every answer; pages whose inline scripts run only with the response's
nonce, drawn in Chromium with no CSP violation; the raw query string and markup in imported
names shown as text, never run."""

import re
import socket
from urllib.parse import urlsplit

import folium
import pytest

from api.security_headers import API_POLICY, page_policy, tile_sources
from geo.settings import MapSettings
from tests.web.conftest import offline_page
from web import map_base
from web.folium_page import render, with_nonce

NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]{22})'")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>")
# Every CSP violation the page reports, and whether the injected markup ran.
WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"""
ATTACK = '"><script>alert(1)</script>'
MARKUP = '<img src=x onerror="window.__ran=1"></script><script>window.__ran=2</script>'


def _policy(r) -> dict[str, str]:
    directives = (d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def _common(r) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_api_answers_and_files_get_the_closed_policy(anonymous):
    for r in (
        anonymous.get("/health"),
        anonymous.get("/api/v1/reports"),  # 401
        anonymous.get("/nowhere"),  # 404
        anonymous.get("/static/js/session.js"),
    ):
        _common(r)
        assert r.headers["content-security-policy"] == API_POLICY
        assert "geolocation=()" in r.headers["permissions-policy"]


def test_pages_get_a_nonce_policy_without_unsafe_script_sources(anonymous, demo_client):
    nonces = set()
    answers = [anonymous.get(p) for p in ("/login", "/docs", "/redoc")]
    for r in [*answers, demo_client.get("/maps/all")]:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        _common(r)
        policy = _policy(r)
        assert "unsafe-inline" not in policy["script-src"]
        assert "unsafe-eval" not in r.headers["content-security-policy"]
        assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
        assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"
        assert policy["connect-src"] == "'self'"
        (nonce,) = NONCE.findall(policy["script-src"])
        nonces.add(nonce)
        # Every inline script of the page carries this response's nonce, and no other does.
        inline = INLINE_SCRIPT.findall(r.text)
        assert all(f'nonce="{nonce}"' in tag for tag in inline)
        assert r.text.count("nonce=") == len(re.findall(rf'nonce="{nonce}"', r.text))
    assert len(nonces) == 4


def test_map_tooltips_show_properties_as_text(demo_client):
    page = demo_client.get("/maps/flood/coordinator").text
    # folium's own GeoJsonTooltip writes `div.innerHTML=table`, the values pasted in as HTML.
    assert page.count("riskgridTooltip(layer.feature.properties") >= 3
    assert "innerHTML" not in page.partition("</body>")[2]


def test_a_cached_map_gets_a_new_nonce_per_response(demo_client):
    first, second = demo_client.get("/maps/fire"), demo_client.get("/maps/fire")
    assert second.headers["x-cache"] == "hit"
    a, b = (NONCE.findall(_policy(r)["script-src"])[0] for r in (first, second))
    assert a != b and f'nonce="{a}"' not in second.text and f'nonce="{b}"' in second.text


def test_only_the_phone_page_may_locate_the_phone(demo_client):
    report = demo_client.get("/report").headers["permissions-policy"]
    assert "geolocation=(self)" in report and "camera=()" in report
    for path in ("/", "/dashboard", "/maps/all", "/maps/flood/coordinator"):
        policy = demo_client.get(path).headers["permissions-policy"]
        assert "geolocation=()" in policy and "camera=()" in policy, path


def _matches(source: str, url: str) -> bool:
    """Whether a CSP host source (`https://*.example.com:8080`) allows `url`."""
    scheme, host = source.split("://")
    parts = urlsplit(url)
    name, _, port = host.partition(":")
    if parts.scheme != scheme or str(parts.port or "") != port:
        return False
    return parts.hostname.endswith(name[1:]) if name.startswith("*.") else parts.hostname == name


@pytest.mark.parametrize(
    "base",
    [
        MapSettings(basemap="osm"),
        MapSettings(basemap="tianditu", tianditu_key="k"),
        MapSettings(basemap="gaode"),
        MapSettings(basemap="url", tile_url="http://{s}.tiles.intranet:8080/{z}/{x}/{y}.png"),
    ],
    ids=lambda b: b.basemap,
)
def test_every_tile_address_a_map_loads_is_in_the_policy(base):
    m = folium.Map(tiles=None)
    map_base._tiles(m, base)
    templates = re.findall(r'L\.tileLayer\(\s*"([^"]+)"', m.get_root().render())
    assert templates
    sources = tile_sources(base)
    for template in templates:
        for s in "0123":
            url = template.replace("{s}", s)
            assert any(_matches(src, url) for src in sources), (url, sources)
    assert "img-src 'self' data: blob: " + " ".join(sources) in page_policy("n", sources)
    assert tile_sources(MapSettings()) == ()


def test_the_policy_names_the_configured_tile_server(demo_database):
    from fastapi.testclient import TestClient

    from api.app import create_app

    settings, engine, _ = demo_database
    local = settings.model_copy(
        update={"maps": MapSettings(basemap="url", tile_url="https://tiles.city.gov/{z}/{x}/{y}")}
    )
    with TestClient(create_app(local, engine=engine)) as c:
        policy = _policy(c.get("/login"))
    assert policy["img-src"] == "'self' data: blob: https://tiles.city.gov"


def _named_map(name: str) -> folium.Map:
    """Return a Folium map with one polygon named `name`, its tooltip from map_base."""
    m = folium.Map(location=[46.5, 125.0], zoom_start=9, tiles=None)
    map_base.add_html(m, "maps/assets.html", scripts=map_base.MAP_SCRIPTS)
    box = {
        "type": "Polygon",
        "coordinates": [[[124, 46], [126, 46], [126, 47], [124, 47], [124, 46]]],
    }
    feature = {"type": "Feature", "geometry": box, "properties": {"name": name, "level": 3}}
    folium.GeoJson(
        {"type": "FeatureCollection", "features": [feature]},
        tooltip=map_base.TextTooltip(["name", "level"]),
    ).add_to(m)
    return m


def test_data_cannot_end_the_map_script_so_no_nonce_lands_on_it():
    page = render(_named_map(MARKUP))
    script = page.partition("</body>")[2]
    assert "\\u003c/script\\u003e\\u003cscript\\u003e" in script
    blessed = with_nonce(page, "N" * 22)
    # The head's own scripts and styles and the map's script: none of the data.
    head = blessed.partition("</head>")[0]
    assert blessed.count('nonce="') == head.count('nonce="') + 1
    assert head.count("<script") + head.count("<style") == head.count('nonce="')


def test_a_page_whose_script_holds_raw_markup_is_refused():
    m = _named_map("x")
    map_base.add_script(m, "var s = '</script><script>alert(1)';")
    with pytest.raises(ValueError, match="map's script"):
        render(m)


def test_a_raw_query_string_comes_back_percent_encoded(live_server, admin_token):
    host, port = urlsplit(live_server).hostname, urlsplit(live_server).port
    # Sent as raw bytes: an HTTP client would percent-encode it first.
    request = (
        f"GET /maps/all?x={ATTACK}&lang=en HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Authorization: Bearer {admin_token}\r\n\r\n"
    )
    with socket.create_connection((host, port)) as s:
        s.sendall(request.encode())
        answer = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200")
    assert "<script>alert" not in body and "&lt;script&gt;" not in body
    assert 'href="/maps/flood?x=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;lang=en"' in body


PAGES = [
    ("/", "table"),
    ("/dashboard", "section.campaign"),
    ("/campaigns/CA04", "#coverage-totals[data-grids]"),
    ("/report", "body[data-ready='1']"),
    ("/maps/all", ".leaflet-overlay-pane canvas"),
    ("/maps/gas", ".leaflet-overlay-pane canvas"),
    ("/maps/flood/coordinator", ".leaflet-overlay-pane path"),
    ("/docs", ".opblock-summary"),
    ("/redoc", "[role=menuitem]"),
    ("/login", "#login-form"),
]


@pytest.mark.parametrize(("path", "drawn"), PAGES, ids=[p for p, _ in PAGES])
def test_page_works_in_chromium_under_its_policy(live_server, admin_token, path, drawn):
    token = None if path == "/login" else admin_token
    with offline_page(live_server, token, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        page.add_init_script(WATCH)
        page.goto(f"{live_server}{path}", wait_until="networkidle")
        page.wait_for_selector(drawn, state="attached", timeout=10_000)
        if path == "/report":  # the pick map loads Leaflet on demand
            page.click("#pick")
            page.wait_for_selector("#map .leaflet-pane", state="attached", timeout=10_000)
        violations = page.evaluate("window.__csp")
    assert violations == [] and outside == []
    assert not [e for e in errors if "Content Security Policy" in e] and errors == []


def test_markup_in_a_name_shows_as_text_in_the_tooltip(live_server):
    nonce = "T" * 22
    body = with_nonce(render(_named_map(MARKUP)), nonce)
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": page_policy(nonce),
    }
    with offline_page(live_server, viewport={"width": 800, "height": 600}) as (p, outside, errors):
        p.add_init_script(WATCH)
        p.route(f"{live_server}/tooltip", lambda r: r.fulfill(body=body, headers=headers))
        p.goto(f"{live_server}/tooltip", wait_until="networkidle")
        p.mouse.move(400, 300)
        p.mouse.move(410, 310)
        tooltip = p.wait_for_selector(".foliumtooltip", timeout=5_000)
        shown = tooltip.inner_text()
        markup = tooltip.inner_html()
        ran = p.evaluate("window.__ran === undefined ? null : window.__ran")
        violations = p.evaluate("window.__csp")
    assert "<img" not in markup and "<script" not in markup
    assert MARKUP in shown.replace("\t", "").replace("\n", "")
    assert ran is None and violations == [] and outside == [] and errors == []
