"""GET /api/v1/hotspots/quiet and the "quiet: check" (核查漏报) layer of the maps: the planted
quiet grid in JSON, GeoJSON and on the theme and coordinator maps; scope, withheld residents
and bad filters; and the model's totals on the Daqing demo."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from tests.factories import login_as
from tests.geo.analytics.test_quiet import FEW_HOMES, FROM_HOMES, QUIET, SMALL, N, code
from tests.geo.analytics.test_quiet import quiet_scenario as scenario

URL = "/api/v1/hotspots/quiet"


def _bearer(db, role: str, **scope) -> dict[str, str]:
    return {"Authorization": f"Bearer {login_as(db, role, **scope)}"}


def _named(page: str, name: str) -> bool:
    """Whether a map page has a layer called `name` (folium writes names ASCII-escaped)."""
    return json.dumps(name) in page


def _layers(page: str) -> list[dict]:
    """Return the GeoJSON data of every folium GeoJson layer on a map page."""
    decoder = json.JSONDecoder()
    return [
        decoder.raw_decode(page, m.end())[0] for m in re.finditer(r"geo_json_\w+_add\(\s*", page)
    ]


def test_quiet_grids_per_grid_with_the_method_within_the_callers_scope(client, db, tmp_path):
    scenario(db, tmp_path)
    first = client.get(URL, params={"theme": "flood"})
    again = client.get(URL, params={"theme": "flood"})
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    body = first.json()
    grids = {g["grid"]: g for g in body["grids"]}
    assert len(grids) == 2 * N * N and body["summary"]["quiet"] == 1
    quiet, small = grids[code(*QUIET)], grids[code(*SMALL)]
    assert (
        quiet["quiet"] and quiet["observed"] == 0 and quiet["expected"] > 50 and quiet["q"] < 1e-10
    )
    assert not small["quiet"] and small["q"] is None and small["expected"] < 3
    assert sum(g["quiet"] for g in body["grids"]) == 1
    method = body["method"]
    assert (method["max_q"], method["min_expected"]) == (0.05, 3.0)
    assert set(method["rates"]) == {"street", "township"} and method["household_size"] == 3.0
    # The expected counts of a stratum add up to its reports: the rate is its own.
    for s, rate in method["rates"].items():
        total = sum(g["expected"] for g in body["grids"] if g["stratum"] == s)
        assert total == pytest.approx(rate["reports"], abs=0.01)

    # GeoJSON: the same rows with the grids' outlines.
    gj = client.get(URL, params={"theme": "flood", "format": "geojson"})
    assert gj.headers["content-type"] == "application/geo+json"
    feats = {f["id"]: f for f in gj.json()["features"]}
    assert feats[code(*QUIET)]["properties"] == quiet
    assert feats[code(*QUIET)]["geometry"]["type"] == "MultiPolygon"

    # Residents from 3 households (< k): exact for an admin, withheld from a planner.
    assert grids[code(*FEW_HOMES)]["residents"] == 9.0 and not grids[code(*FEW_HOMES)]["suppressed"]
    planner = client.get(URL, params={"theme": "flood"}, headers=_bearer(db, "planner")).json()
    seen = {g["grid"]: g for g in planner["grids"]}
    assert seen[code(*FEW_HOMES)] | {"quiet": False} == {
        **grids[code(*FEW_HOMES)],
        "residents": None,
        "expected": None,
        "p": None,
        "q": None,
        "quiet": False,
        "suppressed": True,
    }
    assert seen[code(*FROM_HOMES)]["residents"] == 36.0  # 12 households: shown
    assert seen[code(*QUIET)]["quiet"]

    # A dispatcher of the 镇 district: its grids only, against its own rate.
    town = client.get(
        URL, params={"theme": "flood"}, headers=_bearer(db, "dispatcher", districts=("230603",))
    )
    assert {g["stratum"] for g in town.json()["grids"]} == {"township"}
    assert len(town.json()["grids"]) == N * N

    bad = client.get(URL, params={"grid": code(0, 0)})
    assert bad.status_code == 422 and "district=" in bad.json()["detail"]
    assert client.get(URL, params={"format": "csv"}).status_code == 422
    assert client.get(URL, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_maps_outline_the_quiet_grid_beside_the_cold_spots(client, db, tmp_path):
    scenario(db, tmp_path)
    page = client.get("/maps/flood")
    assert page.status_code == 200 and _named(page.text, "核查漏报（上报少于预期）")
    drawn = [
        f
        for layer in _layers(page.text)
        for f in layer["features"]
        if "预期上报" in f["properties"]
    ]
    assert [f["properties"]["code"] for f in drawn] == [code(*QUIET)]
    props = drawn[0]["properties"]
    assert props["实际上报"] == 0 and props["预期上报"] > 50 and props["网格"] == "网格1-1"
    assert '"dashArray": "6 4"' in page.text
    assert (
        "Quiet: check (fewer reports than expected)"
        in client.get("/maps/flood", params={"lang": "en"}).text
    )
    # Another theme's map tests that theme: nobody sent a fire report, so nothing is expected.
    assert not _named(client.get("/maps/fire").text, "核查漏报（上报少于预期）")
    # The coordinator's flood map shows it too: a grid silent on floods ranks low on hazards.
    coordinator = client.get("/maps/flood/coordinator")
    assert coordinator.status_code == 200 and _named(coordinator.text, "核查漏报（上报少于预期）")


def test_quiet_grids_on_the_demo(demo_client):
    # Every theme: a single theme's ~0.5-1 report per demo grid is too few to test a grid.
    started = time.perf_counter()
    r = demo_client.get(URL)
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    body = r.json()
    summary = body["summary"]
    assert summary["grids"] == 4880 and summary["tested"] > 4000
    expected = np.array([g["expected"] for g in body["grids"]], dtype=float)
    assert expected.sum() == pytest.approx(summary["reports"], rel=1e-4)
    # The demo's reports are clustered (variance ~23 x the mean), yet the FDR flags few.
    assert summary["quiet"] <= 0.01 * summary["tested"]
    print(f"quiet grids on the demo: {elapsed * 1000:.0f} ms, {summary}")
