"""The server-rendered pages: one layout with navigation and a language switch, templates
autoescaped, scripts and styles served from /static under content-hashed addresses, and start
views derived from the stored grids."""

import hashlib
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from tests.factories import ORIGIN, put_reports
from tests.web.conftest import ARTIFACTS, offline_page

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
PAGES = ("/", "/dashboard", "/report")
NAV = ('href="/"', 'href="/dashboard"', 'href="/campaigns"', 'href="/maps/all"',
       'href="/maps/flood/coordinator"', 'href="/report"')  # fmt: skip
VERSIONED = re.compile(r"""(?:src|href)="(/static/[^"?]+)\?v=([0-9a-f]{12})\"""")


@pytest.mark.parametrize("path", PAGES)
def test_page_has_the_layout_navigation_and_language_switch(demo_client, path):
    r = demo_client.get(path)
    assert r.status_code == 200 and r.text.startswith("<!doctype html>")
    assert '<html lang="zh">' in r.text and "· riskgrid</title>" in r.text
    assert all(link in r.text for link in NAV)
    assert f'href="{path}?lang=en"' in r.text
    en = demo_client.get(path, params={"lang": "en"})
    assert '<html lang="en">' in en.text and f'href="{path}"' in en.text
    # In English the links lead to the English pages.
    assert 'href="/dashboard?lang=en"' in en.text and 'href="/report?lang=en"' in en.text


@pytest.mark.parametrize("path", PAGES)
def test_page_scripts_and_styles_are_files_with_hashed_addresses(demo_client, path):
    page = demo_client.get(path).text
    assert "<style" not in page and " style=" not in page
    for tag in re.findall(r"<script[^>]*>", page):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assets = VERSIONED.findall(page)
    assert any(a.endswith(".css") for a, _ in assets)
    for address, digest in assets:
        body = (WEB / address.removeprefix("/")).read_bytes()
        assert hashlib.sha256(body).hexdigest()[:12] == digest
        r = demo_client.get(f"{address}?v={digest}")
        assert r.status_code == 200 and r.content == body
        assert "immutable" in r.headers["cache-control"]
    assert "cache-control" not in demo_client.get("/static/css/base.css").headers


def test_language_switch_keeps_the_query_of_a_theme_map(demo_client):
    page = demo_client.get("/maps/flood", params={"campaign": "CA04"}).text
    assert 'href="/maps/flood?campaign=CA04&amp;lang=en"' in page
    en = demo_client.get("/maps/flood", params={"campaign": "CA04", "lang": "en"}).text
    assert 'href="/maps/flood?campaign=CA04"' in en and "Theme maps" in en
    coordinator = demo_client.get("/maps/flood/coordinator").text
    assert 'href="/maps/flood/coordinator?lang=en"' in coordinator


def test_english_start_page(demo_client):
    page = demo_client.get("/", params={"lang": "en"}).text
    assert '<a href="/maps/flood?lang=en">flood and typhoon</a>' in page
    assert 'href="/maps/road_safety?campaign=CA10&amp;lang=en"' in page
    assert "<h2>Campaigns</h2>" in page


def test_page_text_is_escaped(client, block):
    with block.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO campaigns (code, name, theme, starts_on, ends_on) "
                "VALUES ('X1', :n, 'fire', '2024-01-01', '2024-01-31')"
            ),
            {"n": "<img src=x onerror=alert(1)> {{ 7*7 }}"},
        )
    for path in ("/", "/dashboard"):
        page = client.get(path).text
        assert "&lt;img src=x onerror=alert(1)&gt; {{ 7*7 }}" in page and "<img" not in page


def _inside_block(lat: float, lon: float) -> bool:
    # The block: 10 x 10 grids of 500 m north-east of ORIGIN (5 km: 0.045° north, 0.065° east;
    # its UTM squares lean a little west), far from anything written in code.
    return ORIGIN[1] - 0.01 < lat < ORIGIN[1] + 0.06 and ORIGIN[0] - 0.01 < lon < ORIGIN[0] + 0.08


def test_start_views_come_from_the_stored_grids(client, block):
    put_reports(block, {(1, 1): 3, (7, 7): 3}, np.random.default_rng(4))
    page = client.get("/maps/flood").text
    lat, lon = map(float, re.search(r"center: \[([-\d.]+), ([-\d.]+)\]", page).groups())
    assert _inside_block(lat, lon)
    coordinator = client.get("/maps/flood/coordinator").text
    (south, west), (north, east) = (
        tuple(map(float, p))
        for p in re.findall(r"\[([-\d.]+), ([-\d.]+)\]", coordinator.split("fitBounds(")[1])[:2]
    )
    assert _inside_block(south, west) and _inside_block(north, east)
    report = client.get("/report").text
    lat, lon = (float(re.search(rf'data-{k}="([-\d.]+)"', report).group(1)) for k in ("lat", "lon"))
    assert _inside_block(lat, lon)


def test_report_page_needs_no_grids(client):
    r = client.get("/report")
    assert r.status_code == 200 and 'id="report-page"' in r.text and "data-lat" not in r.text


def test_page_files_are_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["web"]
    packaged = {p for pattern in patterns for p in WEB.glob(pattern)}
    ours = {
        p
        for folder in ("templates", "static")
        for p in (WEB / folder).rglob("*")
        if p.is_file() and "vendor" not in p.relative_to(WEB).parts
    }
    assert ours and ours <= packaged


def test_language_switch_in_chromium(live_server, admin_token):
    with offline_page(live_server, admin_token, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        page.goto(f"{live_server}/report")
        page.wait_for_selector("body[data-ready='1']")
        page.click("nav.site-nav >> text=English")
        page.wait_for_selector("body[data-ready='1']")
        heading = page.inner_text("h1")
        themes = page.eval_on_selector_all("#theme option", "os => os.map(o => o.textContent)")
        url = page.url
        page.click("nav.site-nav >> text=Dashboard")
        dashboard = (page.url, page.inner_text("h1"))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard_en.png"))
    assert outside == [] and errors == []
    assert url.endswith("/report?lang=en") and heading == "Report an event"
    assert "flood and typhoon" in themes
    assert dashboard == (f"{live_server}/dashboard?lang=en", "Campaign dashboard")


def test_start_page_and_dashboard_count_only_the_reports_in_the_viewers_scope(
    demo_database, demo_client
):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.factories import login_as

    settings, engine, _ = demo_database
    counts = re.compile(r'<td class="n">([\d,]+)</td>')
    with TestClient(create_app(settings, engine=engine)) as worker:
        # A worker of no grid who sent nothing yet: in scope there is nothing to count.
        worker.headers["Authorization"] = f"Bearer {login_as(engine, 'worker')}"
        for path in ("/", "/dashboard"):
            theirs = counts.findall(worker.get(path).text)
            everyone = counts.findall(demo_client.get(path).text)
            assert len(theirs) == len(everyone) > 10
            assert set(theirs) == {"0"} and set(everyone) != {"0"}
