"""Flood risk API on the Daqing demo: ranking exports, area queries, who sees personal data."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.geometry
from sqlalchemy import text

from geo.coords import wgs84_to_gcj02
from tests.factories import login_as

# About 200 urban grids over 萨尔图 and 龙凤.
URBAN_BOX = shapely.geometry.mapping(shapely.box(125.0, 46.52, 125.10, 46.58))


@pytest.fixture(scope="module")
def tokens(demo_engine):
    return {
        role: {"Authorization": f"Bearer {login_as(demo_engine, role, f'risk-{role}')}"}
        for role in ("coordinator", "admin", "planner")
    }


def test_ranking_exports_hold_the_same_rows(demo_client):
    gj = demo_client.get("/api/v1/risk/grids", params={"limit": 60})
    assert gj.status_code == 200 and gj.headers["content-type"] == "application/geo+json"
    body = gj.json()
    assert body["method"]["weights"]["exposure"] == 0.35 and len(body["features"]) == 60
    first = body["features"][0]["properties"]
    assert first["rank"] == 1 and first["score"] >= body["features"][-1]["properties"]["score"]
    assert body["features"][0]["geometry"]["type"] == "MultiPolygon"
    csv = demo_client.get("/api/v1/risk/grids", params={"limit": 60, "format": "csv"})
    assert csv.content.startswith("\ufeff".encode())
    from_csv = pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig", dtype={"code": str})
    xlsx = demo_client.get("/api/v1/risk/grids", params={"limit": 60, "format": "xlsx"})
    from_xlsx = pd.read_excel(io.BytesIO(xlsx.content), engine="openpyxl", dtype={"code": str})
    codes = [f["properties"]["code"] for f in body["features"]]
    scores = [f["properties"]["score"] for f in body["features"]]
    assert list(from_csv["code"]) == list(from_xlsx["code"]) == codes
    np.testing.assert_allclose(from_csv["score"], scores)
    np.testing.assert_allclose(from_xlsx["score"], scores)
    assert set(from_csv.columns) == set(first)


def test_ranking_by_district_and_since(demo_client):
    one = demo_client.get(
        "/api/v1/risk/grids", params={"district": "230622", "format": "csv"}
    ).content
    frame = pd.read_csv(io.BytesIO(one), encoding="utf-8-sig", dtype={"district_code": str})
    assert set(frame["district_code"]) == {"230622"} and len(frame) > 100
    later = demo_client.get(
        "/api/v1/risk/grids", params={"since": "2030-01-01T00:00:00+08:00", "limit": 5000}
    ).json()
    assert all(f["properties"]["open_flood_hazards"] == 0 for f in later["features"])


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"theme": "fire"}, 422, "flood theme"),
        ({"min_level": 4}, 422, "min_level"),
        ({"buffer_m": "nan"}, 422, "buffer_m"),
        ({"since": "2024-07-01T00:00:00"}, 422, "time zone"),
        ({"district": "999999"}, 404, "999999"),
        ({"format": "pdf"}, 422, "format"),
    ],
)
def test_ranking_refuses_bad_parameters(demo_client, params, status, needle):
    r = demo_client.get("/api/v1/risk/grids", params=params)
    assert r.status_code == status and needle in r.json()["detail"]


def test_personal_data_only_for_coordinators_and_admins(demo_client, demo_engine, tokens):
    with demo_engine.connect() as conn:
        names, phones = zip(
            *conn.execute(
                text(
                    "SELECT head_name, phone FROM households WHERE ST_Covers("
                    "ST_GeomFromGeoJSON(:g), geom) ORDER BY code LIMIT 50"
                ),
                {"g": json.dumps(URBAN_BOX)},
            ).all(),
            strict=True,
        )
    for headers in (tokens["planner"],):
        r = demo_client.post("/api/v1/risk/query", json={"geometry": URBAN_BOX}, headers=headers)
        assert r.status_code == 200
        body = r.json()
        assert body["relocation"] is None and "coordinators" in body["relocation_withheld"]
        assert body["households"]["households"] > 50
        assert not any(p in r.text for p in phones) and not any(n in r.text for n in names)
        xlsx = demo_client.post(
            "/api/v1/risk/query",
            params={"format": "xlsx"},
            json={"geometry": URBAN_BOX},
            headers=headers,
        )
        sheets = pd.read_excel(io.BytesIO(xlsx.content), sheet_name=None, engine="openpyxl")
        assert set(sheets) == {"grids", "hazards"}
        csv = demo_client.post(
            "/api/v1/risk/query",
            params={"format": "csv"},
            json={"geometry": URBAN_BOX},
            headers=headers,
        )
        assert csv.status_code == 403 and "coordinators" in csv.json()["detail"]
        listing = demo_client.get("/api/v1/households", headers=headers)
        assert listing.status_code == 403 and "by-grid" in listing.json()["detail"]
    for role in ("coordinator", "admin"):
        r = demo_client.post(
            "/api/v1/risk/query", json={"geometry": URBAN_BOX}, headers=tokens[role]
        )
        assert r.status_code == 200 and any(p in r.text for p in phones)
        listing = demo_client.get("/api/v1/households", params={"limit": 3}, headers=tokens[role])
        assert listing.status_code == 200 and len(listing.json()["households"]) == 3
        assert {"head_name", "phone", "lon", "lat"} <= set(listing.json()["households"][0])


def test_counts_per_grid_have_no_names(demo_client):
    rows = demo_client.get("/api/v1/households/by-grid", params={"district": "230603"}).json()
    assert rows and all(r["district_code"] == "230603" for r in rows)
    assert set(rows[0]) == {
        "code",
        "name",
        "district_code",
        "households",
        "residents",
        "over_60",
        "living_alone",
        "mobility_needs",
        "vulnerable_households",
        "vulnerable_residents",
        "suppressed",
    }


def test_bad_or_revoked_tokens_are_refused(demo_client, demo_engine):
    token = login_as(demo_engine, "coordinator", "left-coordinator")
    with demo_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = "
                "(SELECT id FROM users WHERE username = 'left-coordinator')"
            )
        )
    for header in (f"Bearer {token}", "Bearer nope", "Basic abc", "Bearer"):
        r = demo_client.get("/api/v1/households", headers={"Authorization": header})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_relocation_exports_match_the_list(demo_client, tokens):
    body = {"geometry": URBAN_BOX, "limit": 20_000}
    listed = demo_client.post("/api/v1/risk/query", json=body, headers=tokens["coordinator"])
    rows = listed.json()["relocation"]
    assert listed.json()["relocation_total"] == len(rows) > 100
    assert [r["priority"] for r in rows] == list(range(1, len(rows) + 1))
    csv = demo_client.post(
        "/api/v1/risk/query", params={"format": "csv"}, json=body, headers=tokens["coordinator"]
    )
    frame = pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig", dtype={"phone": str})
    xlsx = demo_client.post(
        "/api/v1/risk/query", params={"format": "xlsx"}, json=body, headers=tokens["coordinator"]
    )
    sheets = pd.read_excel(
        io.BytesIO(xlsx.content), sheet_name=None, engine="openpyxl", dtype={"phone": str}
    )
    assert list(frame["code"]) == list(sheets["relocation"]["code"]) == [r["code"] for r in rows]
    assert list(frame["phone"]) == [r["phone"] for r in rows]
    assert len(sheets["grids"]) == len(listed.json()["grids"])
    few = demo_client.post(
        "/api/v1/risk/query", json={**body, "limit": 5}, headers=tokens["coordinator"]
    ).json()
    assert len(few["relocation"]) == 5 and few["relocation_total"] == len(rows)


def test_gcj02_polygon_finds_the_same_grids(demo_client):
    ring = np.asarray(URBAN_BOX["coordinates"][0])
    lon, lat = wgs84_to_gcj02(ring[:, 0], ring[:, 1])
    shifted = {"type": "Polygon", "coordinates": [np.column_stack([lon, lat]).tolist()]}
    a = demo_client.post("/api/v1/risk/query", json={"geometry": URBAN_BOX}).json()
    b = demo_client.post("/api/v1/risk/query", json={"geometry": shifted, "crs": "gcj02"}).json()
    assert [g["code"] for g in a["grids"]] == [g["code"] for g in b["grids"]]
    assert b["area_km2"] == pytest.approx(a["area_km2"], rel=1e-4)


def test_self_intersecting_polygon_is_repaired_and_says_so(demo_client):
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[125.0, 46.52], [125.1, 46.58], [125.1, 46.52], [125.0, 46.58], [125.0, 46.52]]
        ],
    }
    refused = demo_client.post("/api/v1/risk/query", json={"geometry": bowtie, "repair": False})
    assert refused.status_code == 422 and "Self-intersection" in refused.json()["detail"]
    repaired = demo_client.post("/api/v1/risk/query", json={"geometry": bowtie})
    assert repaired.status_code == 200
    assert any("repaired" in n for n in repaired.json()["notes"]) and repaired.json()["grids"]


def _ring(n: int) -> list:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = np.column_stack([125.05 + 0.01 * np.cos(t), 46.55 + 0.01 * np.sin(t)]).tolist()
    return [[*pts, pts[0]]]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"geometry": {"type": "Point", "coordinates": [125, 46]}}, 422, "Polygon"),
        ({"geometry": shapely.geometry.mapping(shapely.box(123, 45, 126, 47.5))}, 422, "km²"),
        ({"geometry": {"type": "Polygon", "coordinates": _ring(25_000)}}, 422, "vertices"),
        (
            {"geometry": {"type": "Polygon", "coordinates": [[[125, 46], [125, 100], [126, 46]]]}},
            422,
            "lat",
        ),
        (
            {"geometry": {"type": "Polygon", "coordinates": [[[125, 46], [125.1, 46]]]}},
            422,
            "positions",
        ),
        ({"geometry": {"type": "Polygon", "coordinates": "x"}}, 422, "malformed"),
        ({"geometry": URBAN_BOX, "feature": {"kind": "river", "code": "nen"}}, 422, "either"),
        ({}, 422, "either"),
        ({"feature": {"kind": "river", "code": "amazon"}, "distance_m": 100}, 404, "amazon"),
        ({"feature": {"kind": "river", "code": "nen"}, "distance_m": 50_000}, 422, "distance_m"),
        ({"feature": {"kind": "river", "code": "nen"}}, 422, "line"),
        ({"feature": {"kind": "lake", "code": "nen"}, "distance_m": 10}, 422, "kind"),
        ({"geometry": URBAN_BOX, "crs": "epsg3857"}, 422, "crs"),
    ],
)
def test_area_query_refuses_bad_areas(demo_client, body, status, needle):
    r = demo_client.post("/api/v1/risk/query", json=body)
    assert r.status_code == status and needle in r.json()["detail"], r.text


def test_layers_are_served_as_geojson(demo_client):
    rivers = demo_client.get("/api/v1/risk/layers", params={"kind": "river"}).json()
    assert {f["properties"]["name"] for f in rivers["features"]} == {"嫩江", "松花江"}
    summary = demo_client.get("/api/v1/risk/layers/summary").json()
    zones = {r["level"]: r for r in summary if r["kind"] == "flood_zone"}
    assert set(zones) == {1, 2, 3} and all(z["area_km2"] > 100 for z in zones.values())
