"""Grid, area and health endpoints over the demo and over small hand-made layouts."""

import numpy as np
import pytest

from boundaries.importer import ImportOptions, import_file
from geo.settings import ImportSettings
from tests.factories import grid_frame, point_m, square_m, tiled, write


@pytest.fixture
def small(db, tmp_path):
    """Two 500 m grids side by side, and a 100 m exclusive grid inside the first."""
    rows = [
        *tiled(1),
        {
            "code": "230602001001002",
            "name": "东侧网格",
            "kind": "comprehensive",
            "community_code": "230602001001",
            "geometry": square_m(500, 0, 500),
        },
        {
            "code": "230602001001901",
            "name": "实验小学",
            "kind": "exclusive",
            "community_code": "230602001001",
            "geometry": square_m(200, 200, 100),
        },
    ]
    import_file(
        db, write(grid_frame(rows), tmp_path / "g.geojson"), ImportOptions(), ImportSettings()
    )
    return rows


def _codes(resp):
    return [f["properties"]["code"] for f in resp.json()["features"]]


def test_lookup_inside_exclusive_lists_exclusive_first(client, small):
    lon, lat = point_m(250, 250)
    r = client.get("/api/v1/grids/lookup", params={"lon": lon, "lat": lat})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert _codes(r) == ["230602001001901", "230602001001001"]


def test_lookup_on_shared_edge_lists_lowest_code_first(client, small):
    # The shared edge's own coordinates, so the point lies exactly on both grids' boundary.
    shared = [
        c for c in small[0]["geometry"].exterior.coords if c in small[1]["geometry"].exterior.coords
    ]
    lon, lat = shared[0]
    for _ in range(3):
        r = client.get("/api/v1/grids/lookup", params={"lon": lon, "lat": lat})
        assert _codes(r) == ["230602001001001", "230602001001002"]


def test_lookup_outside_every_grid_is_an_empty_collection(client, small):
    lon, lat = point_m(5000, 5000)
    r = client.get("/api/v1/grids/lookup", params={"lon": lon, "lat": lat})
    assert r.status_code == 200 and r.json() == {"type": "FeatureCollection", "features": []}


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"lon": 125.0, "lat": 91}, "lat: Input should be less than or equal to 90"),
        ({"lon": "nan", "lat": 46.6}, "lon: Input should be a finite number"),
        ({"lon": "inf", "lat": 46.6}, "lon: Input should be a finite number"),
        ({"lon": "abc", "lat": 46.6}, "lon: Input should be a valid number"),
        ({"lat": 46.6}, "lon: Field required"),
    ],
)
def test_lookup_bad_coordinates_answer_422_with_a_reason(client, params, needle):
    r = client.get("/api/v1/grids/lookup", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_get_grid_and_unknown_code(client, small):
    r = client.get("/api/v1/grids/230602001001002")
    assert r.status_code == 200
    f = r.json()
    assert f["type"] == "Feature" and f["properties"]["name"] == "东侧网格"
    assert f["geometry"]["type"] == "MultiPolygon"
    assert 249_000 < f["properties"]["area_m2"] < 251_000
    r = client.get("/api/v1/grids/230602999999999")
    assert r.status_code == 404 and "among the stored grids" in r.json()["detail"]


def test_list_filters_by_kind_and_pages(client, small):
    assert _codes(client.get("/api/v1/grids", params={"kind": "exclusive"})) == ["230602001001901"]
    page = client.get("/api/v1/grids", params={"limit": 2, "offset": 1}).json()
    assert page["numberMatched"] == 3 and page["numberReturned"] == 2
    assert [f["id"] for f in page["features"]] == ["230602001001002", "230602001001901"]
    r = client.get("/api/v1/grids", params={"kind": "special"})
    assert r.status_code == 422 and "kind" in r.json()["detail"]


@pytest.mark.parametrize(
    ("bbox", "needle"),
    [
        ("a,b,c,d", "four numbers"),
        ("1,2,3", "four numbers"),
        ("125,46,124,47", "minlon < maxlon"),
        ("nan,46,125,47", "finite"),
        ("125,46,200,47", "out of range"),
        ("100,20,130,50", "square degrees"),
    ],
)
def test_bad_bbox_answers_422(client, bbox, needle):
    r = client.get("/api/v1/grids", params={"bbox": bbox})
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_limit_above_maximum_is_refused(client):
    r = client.get("/api/v1/grids", params={"limit": 100_000})
    assert r.status_code == 422 and "at most" in r.json()["detail"]


def test_bbox_over_demo_returns_intersecting_grids(demo_client, demo_engine):
    from sqlalchemy import text

    bbox = (125.00, 46.58, 125.04, 46.61)
    r = demo_client.get("/api/v1/grids", params={"bbox": ",".join(map(str, bbox)), "limit": 1000})
    got = set(_codes(r))
    with demo_engine.connect() as conn:
        want = {
            c
            for (c,) in conn.execute(
                text(
                    "SELECT code FROM grids "
                    "WHERE ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))"
                ),
                dict(zip("abcd", bbox, strict=True)),
            )
        }
    assert got == want and len(got) > 20


def test_district_filter_on_demo(demo_client):
    r = demo_client.get("/api/v1/grids", params={"district": "230621", "limit": 1})
    assert r.json()["numberMatched"] > 300
    assert r.json()["features"][0]["properties"]["district_code"] == "230621"


def test_areas_tree_rolls_up_grid_counts(demo_client):
    (city,) = demo_client.get("/api/v1/areas").json()
    assert city["code"] == "230600" and city["grids"] == 4964
    assert len(city["children"]) == 9
    assert sum(d["grids"] for d in city["children"]) == 4964
    r = demo_client.get("/api/v1/areas/230606")
    assert r.status_code == 200 and r.json()["properties"]["name"] == "大同区"
    assert demo_client.get("/api/v1/areas/999999").status_code == 404


def test_health_reports_postgis_and_counts(demo_client):
    body = demo_client.get("/health").json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.")
    assert body["counts"]["comprehensive_grids"] == 4880
    assert body["counts"]["exclusive_grids"] == 84


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/grids", "/api/v1/grids/lookup", "/api/v1/areas", "/health"} <= set(paths)


def test_list_in_gcj02_is_shifted_onto_amap(demo_client):
    params = {"bbox": "125.03,46.58,125.05,46.59", "limit": 5}
    wgs = demo_client.get("/api/v1/grids", params=params).json()
    gcj = demo_client.get("/api/v1/grids", params={**params, "crs": "gcj02"}).json()
    assert [f["id"] for f in wgs["features"]] == [f["id"] for f in gcj["features"]]
    a = np.asarray(wgs["features"][0]["geometry"]["coordinates"][0][0])
    b = np.asarray(gcj["features"][0]["geometry"]["coordinates"][0][0])
    # The GCJ-02 offset in Daqing is about 590 m, the same for every vertex of a small grid.
    dx = (b[:, 0] - a[:, 0]) * 111_320 * np.cos(np.radians(a[:, 1]))
    dy = (b[:, 1] - a[:, 1]) * 110_574
    assert np.all((400 < np.hypot(dx, dy)) & (np.hypot(dx, dy) < 800))
    r = demo_client.get("/api/v1/grids", params={**params, "crs": "bd09"})
    assert r.status_code == 422
