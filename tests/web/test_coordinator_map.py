"""The flood coordinator's map in Chromium: offline layers, and a drawn rectangle that runs the
area query, with the relocation list shown only once a coordinator's token is given."""

import re

from geo.identity.tokens import create_token
from tests.web.conftest import ARTIFACTS, offline_page

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""")
MAP_NAME = "() => Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))"


def test_page_is_local_and_lists_the_layers(demo_client):
    r = demo_client.get("/maps/flood/coordinator")
    assert r.status_code == 200 and not OUTSIDE.search(r.text)
    assert "/static/vendor/leaflet-draw/leaflet.draw.js" in r.text
    assert 'id="risk-panel"' in r.text and "riskgridQuery" in r.text
    # No personal data in the page itself: the relocation list comes from the API.
    assert "13800" not in r.text
    en = demo_client.get("/maps/flood/coordinator", params={"lang": "en"})
    for name in ("Flood zones", "Rivers and reservoirs", "Top 300 grids", "Coordinator token"):
        assert name in en.text


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


def test_drawn_area_is_queried_and_the_list_needs_a_token(live_server, demo_engine):
    with demo_engine.begin() as conn:
        token = create_token(conn, "地图测试协调员", "coordinator")
    with offline_page(live_server, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        page.goto(f"{live_server}/maps/flood/coordinator", wait_until="networkidle")
        layers = page.evaluate("""() => [...document.querySelectorAll(
            '.leaflet-control-layers-overlays label')].map(l => l.innerText.trim())""")
        name = page.evaluate(MAP_NAME)
        page.evaluate(f"() => {name}.setView([46.55, 125.05], 12)")
        page.wait_for_timeout(300)
        _draw_rectangle(page, (46.53, 125.01), (46.57, 125.09))
        page.wait_for_selector("#risk-result[data-state='done']")
        grids = int(page.inner_text("#risk-grids"))
        homes = int(page.inner_text("#risk-homes"))
        withheld = page.locator("#risk-withheld").count()
        page.fill("#risk-token", token)
        page.click("#risk-token-save")
        _draw_rectangle(page, (46.53, 125.01), (46.57, 125.09))
        page.wait_for_function(
            "document.querySelectorAll('#risk-relocation li').length > 0", timeout=15_000
        )
        listed = page.locator("#risk-relocation li").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "coordinator_map.png"))
    assert outside == [] and errors == []
    assert {"洪水风险区", "低洼易涝区", "河流与水库", "未处置的汛情隐患"} <= set(layers)
    assert grids > 20 and homes > 50 and withheld == 1
    assert listed == 30


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
