"""Theme maps: built from aggregates, every asset served locally, drawn in a real browser."""

import json
import os
import re
import signal

import numpy as np
import pytest
import shapely
import shapely.geometry
from sqlalchemy import text

from api.app import create_app
from tests.factories import BLOCK_N, block_code, login_as, put_reports
from tests.web.conftest import ARTIFACTS, offline_page, phone_context
from web.assets import localize
from web.maps import THEMES

# Non-transparent pixels on each heat layer canvas.
DRAWN_PIXELS = """() => [...document.querySelectorAll('canvas.leaflet-heatmap-layer')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
})"""
OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""")


@pytest.mark.parametrize("theme", THEMES)
def test_map_page_references_only_local_assets(demo_client, theme):
    r = demo_client.get(f"/maps/{theme}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/static/vendor/leaflet/leaflet.js" in r.text
    assert not OUTSIDE.search(r.text)
    assert demo_client.get("/static/vendor/leaflet/leaflet.js").status_code == 200


def test_english_labels_and_unknown_theme(demo_client):
    assert "Open reports" in demo_client.get("/maps/fire", params={"lang": "en"}).text
    r = demo_client.get("/maps/weather")
    assert r.status_code == 422 and "unknown theme" in r.json()["detail"]


def test_localize_refuses_a_page_that_still_loads_from_outside():
    with pytest.raises(ValueError, match="still loads from outside"):
        localize('<script src="https://unpkg.com/something.js"></script>')


# Every theme's page is built and checked above; Chromium draws the all-themes map, the flood
# map (its risk layers), a masked theme's (stand-in points) and a plain one: the same Folium
# code draws the others (2.5 s a page).
@pytest.mark.parametrize("theme", ["all", "flood", "stability", "fire"])
def test_map_draws_offline_in_chromium(live_server, admin_token, theme):
    with offline_page(live_server, admin_token, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        page.goto(f"{live_server}/maps/{theme}", wait_until="networkidle")
        page.wait_for_timeout(500)
        drawn = page.evaluate(DRAWN_PIXELS)
        layers = page.evaluate("""() => [...document.querySelectorAll(
            '.leaflet-control-layers-overlays label')].map(l => l.innerText.trim())""")
        legend = page.locator(".legend").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"map_{theme}.png"))
        # Zoomed in on 萨尔图区, the grids in view are outlined from the grids API.
        outlined_far = page.evaluate("() => window.riskgridGridOutlines.getLayers().length")
        page.evaluate("""() => { for (const k in window) {
            if (k.startsWith('map_') && window[k] instanceof L.Map) window[k].setView(
              [46.5876, 125.0427], 14); } }""")
        page.wait_for_function(
            "() => window.riskgridGridOutlines.getLayers().length > 0", timeout=10_000
        )
        outlined = page.evaluate("() => window.riskgridGridOutlines.getLayers().length")
        page.screenshot(path=str(ARTIFACTS / f"map_{theme}_zoomed.png"))
    assert outside == [] and errors == []
    assert drawn and max(drawn) > 1000
    assert {"热力图", "未办结事件", "逐周热力", "区县界", "网格边界（放大后显示）"} <= set(layers)
    assert legend >= 1
    assert outlined_far == 0 and 10 < outlined < 4000


@pytest.fixture
def cleanup_reports(demo_engine):
    """A grid worker's session token; the demo database is shared, so what the worker reported
    into it is removed afterwards."""
    token = login_as(demo_engine, "worker", username="xuyuan-worker")
    with demo_engine.begin() as conn:
        conn.execute(text("UPDATE users SET name = '旭园网格员' WHERE username = 'xuyuan-worker'"))
    yield token
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM reports WHERE reporter = '旭园网格员'"))


def test_report_page_posts_a_gps_position_and_shows_the_grid(
    live_server, demo_client, cleanup_reports
):
    lon, lat = 125.0427, 46.5876  # 萨尔图区
    expected = demo_client.get("/api/v1/grids/lookup", params={"lon": lon, "lat": lat}).json()
    code = expected["features"][0]["properties"]["code"]
    context, page = phone_context(live_server, cleanup_reports, lon, lat)
    page.goto(f"{live_server}/report")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#theme", "gas")
    page.select_option("#category", "gas_leak")
    page.click("#gps")
    page.wait_for_function("() => document.getElementById('lon').value !== ''")
    reporter = page.inner_text("#reporter")
    page.click("#send")
    page.wait_for_selector("#grid-code")
    shown = page.inner_text("#grid-code")
    # Offline: the report waits in the phone and goes out when the network is back.
    context.set_offline(True)
    page.click("#send")
    page.wait_for_function("() => document.getElementById('outbox').dataset.count === '1'")
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function("() => document.getElementById('outbox').dataset.count === '0'")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report_page.png"))
    context.close()
    assert shown == code and reporter == "旭园网格员"
    mine = demo_client.get(
        "/api/v1/reports", params={"grid": code, "theme": "gas", "status": "reported"}
    ).json()
    assert sum(f["properties"]["reporter"] == "旭园网格员" for f in mine["features"]) == 2


def test_index_lists_themes_and_campaigns_with_links(demo_client):
    r = demo_client.get("/")
    assert r.status_code == 200
    assert '<a href="/maps/flood">防汛防台</a>' in r.text
    assert 'href="/maps/road_safety?campaign=CA10"' in r.text and "3,247" in r.text
    assert not OUTSIDE.search(r.text)


def test_dashboard_shows_campaign_figures_and_trend(demo_client):
    r = demo_client.get("/dashboard")
    assert r.status_code == 200
    section = r.text.split('id="CA05"')[1].split("</section>")[0]
    assert "3,211" in section and "3,200" in section and "99.7%" in section
    assert '<svg class="trend"' in section and not OUTSIDE.search(r.text)


def _map_with(demo_database, **maps):
    from fastapi.testclient import TestClient

    from geo.settings import MapSettings

    settings, engine, _ = demo_database
    s = settings.model_copy(update={"maps": MapSettings(**maps)})
    with TestClient(create_app(s, engine=engine)) as c:
        c.headers["Authorization"] = f"Bearer {login_as(engine, 'planner')}"
        return c.get("/maps/fire").text


def _first_marker(page: str) -> tuple[float, float]:
    m = re.search(r"var data = \[\[([-\d.]+), ([-\d.]+),", page)
    assert m, "no marker data in the page"
    return float(m.group(1)), float(m.group(2))


def test_basemap_settings(demo_database):
    assert "tile.openstreetmap.org" in _map_with(demo_database, basemap="osm")
    assert "tiles.local/{z}" in _map_with(
        demo_database, basemap="url", tile_url="http://tiles.local/{z}/{x}/{y}.png"
    )
    none = _map_with(demo_database)
    assert "L.tileLayer" not in none
    gaode = _map_with(demo_database, basemap="gaode")
    assert "autonavi.com" in gaode
    # Overlays are shifted onto Gaode's GCJ-02 (about 590 m in Daqing).
    (a_lat, a_lon), (b_lat, b_lon) = _first_marker(none), _first_marker(gaode)
    dy, dx = (b_lat - a_lat) * 110_574, (b_lon - a_lon) * 111_320 * np.cos(np.radians(a_lat))
    assert 300 < float(np.hypot(dx, dy)) < 900


def test_incomplete_basemap_settings_are_refused():
    from pydantic import ValidationError

    from geo.settings import MapSettings

    with pytest.raises(ValidationError, match=r"needs maps\.tile_url"):
        MapSettings(basemap="url")
    with pytest.raises(ValidationError, match=r"needs maps\.tianditu_key"):
        MapSettings(basemap="tianditu")


def test_report_page_takes_a_tapped_point(live_server, demo_client, cleanup_reports):
    lon, lat = 124.8642, 46.6402  # 让胡路区
    with offline_page(live_server, cleanup_reports, viewport={"width": 390, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        page.goto(f"{live_server}/report")
        page.wait_for_selector("body[data-ready='1']")
        page.click("#pick")
        page.wait_for_function("() => window.riskgridPickMap !== undefined")
        page.evaluate(f"() => riskgridPickMap.setView([{lat}, {lon}], 17, {{animate: false}})")
        page.wait_for_selector("#map path.leaflet-interactive, #map svg path")
        point = page.evaluate(f"() => riskgridPickMap.latLngToContainerPoint([{lat}, {lon}])")
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
        tapped = (float(page.input_value("#lon")), float(page.input_value("#lat")))
        page.select_option("#theme", "flood")
        page.select_option("#category", "waterlogging")
        page.click("#send")
        page.wait_for_selector("#grid-code")
        shown = page.inner_text("#grid-code")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report_page_tap.png"))
    assert outside == [] and errors == []
    assert abs(tapped[0] - lon) < 2e-5 and abs(tapped[1] - lat) < 2e-5
    expected = demo_client.get(
        "/api/v1/grids/lookup", params={"lon": tapped[0], "lat": tapped[1]}
    ).json()
    assert shown == expected["features"][0]["properties"]["code"]


def _layers(page: str) -> list[dict]:
    """Return the GeoJSON data of every folium GeoJson layer on a page."""
    decoder = json.JSONDecoder()
    return [
        decoder.raw_decode(page, m.end())[0] for m in re.finditer(r"geo_json_\w+_add\(\s*", page)
    ]


def test_gi_layer_is_the_union_of_the_significant_grids(client, block):
    rng = np.random.default_rng(7)
    cells = {(i, j): int(rng.poisson(2)) for i in range(BLOCK_N) for j in range(BLOCK_N)}
    planted = [(4, 4), (4, 5), (5, 4), (5, 5)]
    for c in planted:
        cells[c] = 30
    put_reports(block, cells, rng)
    gi = client.get("/api/v1/hotspots/gistar", params={"theme": "flood"}).json()
    hot = [f for f in gi["features"] if f["properties"]["class"] == "hot_99"]
    page = client.get("/maps/flood").text
    classes = {
        f["properties"]["class"]: f
        for layer in _layers(page)
        for f in layer["features"]
        if "class" in f["properties"]
    }
    layer = classes["hot_99"]
    assert layer["properties"]["grids"] == len(hot) >= len(planted)
    assert layer["properties"]["reports"] == sum(f["properties"]["count"] for f in hot)
    # One outline for the whole class, no inner edges, the same area as its grids.
    expected = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in hot])
    drawn = shapely.geometry.shape(layer["geometry"])
    assert drawn.symmetric_difference(expected).area / expected.area < 0.01
    assert shapely.get_num_interior_rings(drawn) == shapely.get_num_interior_rings(expected)


def test_names_with_template_syntax_are_shown_as_written(client, block):
    put_reports(block, {(2, 2): 1}, np.random.default_rng(1))
    name = "{{ 7*7 }} grid {# note {% if %}"  # ASCII: folium escapes other text
    with block.begin() as conn:
        conn.execute(
            text("UPDATE grids SET name = :n WHERE code = :c"), {"n": name, "c": block_code(2, 2)}
        )
    r = client.get("/maps/flood")
    assert r.status_code == 200
    assert name in r.text and "49 grid" not in r.text


def test_map_is_built_when_the_statistics_worker_dies(client, block):
    from geo.analytics import stats_process

    put_reports(block, {(1, 1): 3}, np.random.default_rng(2))
    assert client.get("/maps/flood").status_code == 200
    before = stats_process.submit(os.getpid)()
    os.kill(before, signal.SIGKILL)
    put_reports(block, {(3, 3): 3}, np.random.default_rng(3))  # new counts: Gi* runs again
    r = client.get("/maps/flood")
    assert r.status_code == 200 and '"class": "' in r.text
    # The next request has a worker again, a new one.
    after = stats_process.submit(os.getpid)()
    assert after not in (before, os.getpid())


def _markers(page: str) -> np.ndarray:
    """Return the [lat, lon] of every open-report marker on a map page."""
    found = re.search(r"var data = (\[.*?\]);\n", page, re.S)
    assert found, "no marker data in the page"
    return np.array([row[:2] for row in json.loads(found.group(1))], dtype=float)


def _nearest_deg(points: np.ndarray, to: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None, :] - to[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


def test_sensitive_theme_markers_are_the_grids_points_for_a_role_without_the_right(
    demo_database, demo_client
):
    from fastapi.testclient import TestClient

    settings, engine, _ = demo_database
    with engine.connect() as conn:
        exact = np.array(
            conn.execute(
                text(
                    "SELECT ST_Y(geom), ST_X(geom) FROM reports WHERE theme = 'elderly' "
                    "AND status IN "
                    "('reported', 'accepted', 'dispatched', 'in_progress', 'returned')"
                )
            ).all(),
            dtype=float,
        )
        stand_ins = np.array(
            conn.execute(
                text(
                    "SELECT ST_Y(ST_PointOnSurface(geom)), ST_X(ST_PointOnSurface(geom)) FROM grids"
                )
            ).all(),
            dtype=float,
        )
    with TestClient(create_app(settings, engine=engine)) as planner:
        planner.headers["Authorization"] = f"Bearer {login_as(engine, 'planner')}"
        masked = _markers(planner.get("/maps/elderly").text)
    shown = _markers(demo_client.get("/maps/elderly").text)  # an administrator's
    assert len(exact) and len(masked) and len(shown)
    # The administrator sees where each report is; the planner only which grid it is in.
    assert _nearest_deg(shown, exact).max() < 1e-5
    assert _nearest_deg(masked, stand_ins).max() < 1e-5
    assert _nearest_deg(masked, exact).min() > 1e-5
