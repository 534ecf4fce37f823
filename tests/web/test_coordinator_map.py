"""The flood coordinator's map in Chromium: offline layers, and a drawn rectangle that runs the
area query with the page's session, the relocation list shown only to a coordinator; the map
only for the roles that coordinate, and household counts only for those who see households."""

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.factories import login_as
from tests.web.conftest import ARTIFACTS, offline_page

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""")
MAP_NAME = "() => Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))"


def test_page_is_local_and_lists_the_layers(demo_client):
    r = demo_client.get("/maps/flood/coordinator")
    assert r.status_code == 200 and not OUTSIDE.search(r.text)
    assert "/static/vendor/leaflet-draw/leaflet.draw.js" in r.text
    assert 'id="risk-panel"' in r.text and "riskgridQuery" in r.text
    # No personal data in the page itself: the relocation list comes from the API.
    # (As a whole number: Folium's random element ids can hold the digits "13800".)
    assert not re.search(r"(?<!\w)1380\d{7}(?!\w)", r.text)
    en = demo_client.get("/maps/flood/coordinator", params={"lang": "en"})
    for name in ("Flood zones", "Rivers and reservoirs", "Top 300 grids", "Vulnerable households"):
        assert name in en.text
    # The session replaces the pasted token: no token box, no token kept in the tab.
    assert 'id="risk-token"' not in en.text and "sessionStorage" not in en.text


@pytest.fixture(scope="module")
def as_role(demo_database):
    """Return a client of the demo database logged in (bearer) with a new user of a role."""
    settings, engine, _ = demo_database
    with TestClient(create_app(settings, engine=engine)) as c:

        def client(role: str, **scope) -> TestClient:
            c.headers["Authorization"] = f"Bearer {login_as(engine, role, **scope)}"
            return c

        yield client


@pytest.mark.parametrize("role", ["planner", "worker", "department"])
def test_other_roles_get_a_page_that_says_the_map_is_not_theirs(as_role, role):
    scope = {"department": "住建局"} if role == "department" else {}
    r = as_role(role, **scope).get("/maps/flood/coordinator")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert 'id="forbidden"' in r.text and "汛期协调员、指挥中心和管理员" in r.text
    assert "riskgridQuery" not in r.text and 'href="/maps/flood/coordinator"' not in r.text
    en = as_role(role, **scope).get("/maps/flood/coordinator", params={"lang": "en"})
    assert en.status_code == 403 and "is for flood coordinators, dispatchers" in en.text


def test_dispatcher_sees_the_map_without_household_counts(as_role):
    en = {"lang": "en"}
    page = as_role("dispatcher").get("/maps/flood/coordinator", params=en).text
    assert "riskgridQuery" in page and "Unresolved flood hazards" in page
    assert "Vulnerable households" not in page and '"vulnerable_residents"' not in page
    coordinator = as_role("coordinator").get("/maps/flood/coordinator", params=en).text
    assert "Vulnerable households" in coordinator and '"vulnerable_residents"' in coordinator


def test_district_coordinator_sees_the_grids_of_their_districts_only(as_role, demo_engine):
    from sqlalchemy import text

    with demo_engine.connect() as conn:
        district = conn.execute(
            text("SELECT min(district_code) FROM grids WHERE kind = 'comprehensive'")
        ).scalar_one()
        theirs = set(
            conn.execute(
                text("SELECT name FROM grids WHERE kind = 'comprehensive' AND district_code = :d"),
                {"d": district},
            ).scalars()
        )
    page = as_role("coordinator", districts=(district,)).get("/maps/flood/coordinator").text
    ranked = _layers_named(page, "rank")
    assert ranked and {f["properties"]["name"] for f in ranked} <= theirs
    assert [f["properties"]["rank"] for f in ranked] == list(range(1, len(ranked) + 1))
    everyone = _layers_named(as_role("coordinator").get("/maps/flood/coordinator").text, "rank")
    assert {f["properties"]["name"] for f in everyone} - theirs


def _layers_named(page: str, field: str) -> list[dict]:
    """Return the features of the page's GeoJSON layers whose properties hold `field`."""
    import json

    decoder = json.JSONDecoder()
    return [
        f
        for m in re.finditer(r"geo_json_\w+_add\(\s*", page)
        for f in decoder.raw_decode(page, m.end())[0]["features"]
        if field in f["properties"]
    ]


def _draw_rectangle(page, south_west, north_east):
    name = page.evaluate(MAP_NAME)
    a = page.evaluate(f"() => {name}.latLngToContainerPoint({list(south_west)})")
    b = page.evaluate(f"() => {name}.latLngToContainerPoint({list(north_east)})")
    box = page.locator(".folium-map").bounding_box()
    page.click(".leaflet-draw-draw-rectangle")
    page.mouse.move(box["x"] + a["x"], box["y"] + a["y"])
    page.mouse.down()
    page.mouse.move(box["x"] + (a["x"] + b["x"]) / 2, box["y"] + (a["y"] + b["y"]) / 2, steps=5)
    page.mouse.move(box["x"] + b["x"], box["y"] + b["y"], steps=5)
    page.mouse.up()


def _query_drawn_area(page, live_server: str) -> None:
    page.goto(f"{live_server}/maps/flood/coordinator", wait_until="networkidle")
    name = page.evaluate(MAP_NAME)
    page.evaluate(f"() => {name}.setView([46.55, 125.05], 12)")
    page.wait_for_timeout(300)
    _draw_rectangle(page, (46.53, 125.01), (46.57, 125.09))
    page.wait_for_selector("#risk-result[data-state='done']")


def test_drawn_area_is_queried_and_the_list_needs_a_coordinator(live_server, demo_engine):
    dispatcher = login_as(demo_engine, "dispatcher", username="map-test-dispatcher")
    coordinator = login_as(demo_engine, "coordinator", username="map-test-coordinator")
    with offline_page(live_server, dispatcher, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        _query_drawn_area(page, live_server)
        layers = page.evaluate("""() => [...document.querySelectorAll(
            '.leaflet-control-layers-overlays label')].map(l => l.innerText.trim())""")
        grids = int(page.inner_text("#risk-grids"))
        homes = int(page.inner_text("#risk-homes"))
        withheld = page.locator("#risk-withheld").count()
        asked_for_token = page.locator("#risk-token").count()
    assert outside == [] and errors == []
    with offline_page(live_server, coordinator, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        _query_drawn_area(page, live_server)
        page.wait_for_function(
            "() => document.querySelectorAll('#risk-relocation li').length > 0", timeout=15_000
        )
        listed = page.locator("#risk-relocation li").count()
        who = page.inner_text("nav.site-nav .who")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "coordinator_map.png"))
    assert outside == [] and errors == []
    assert {"洪水风险区", "低洼易涝区", "河流与水库", "未处置的汛情隐患"} <= set(layers)
    assert grids > 20 and homes > 50 and withheld == 1 and asked_for_token == 0
    assert listed == 30 and "map-test-coordinator" in who


def test_household_tooltips_show_grid_names_as_written():
    from types import SimpleNamespace

    import folium
    import geopandas as gpd
    import pandas as pd
    import shapely

    from web import risk_map

    name = "${7*7} `x` <img src=x onerror=alert(1)> \\"
    ranked = pd.DataFrame(
        {"code": ["G1"], "name": [name], "households": [3], "vulnerable_households": [2],
         "vulnerable_residents": [5]}
    )  # fmt: skip
    frame = gpd.GeoDataFrame({"code": ["G1"]}, geometry=[shapely.box(125, 46, 125.01, 46.01)])
    m = folium.Map()
    risk_map._add_household_counts(m, ranked, SimpleNamespace(frame=frame), "homes", False)
    page = m.get_root().render()
    tooltip = page.split(".bindTooltip(")[1].split("</div>`")[0]
    assert "${" not in tooltip and "<img" not in tooltip and "`x`" not in tooltip
    assert "&#36;{7*7} &#96;x&#96; &lt;img src=x onerror=alert(1)&gt; &#92;: 3 / 5" in tooltip
