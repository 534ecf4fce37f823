"""Hotspots: aggregates, Gi* against esda, planted clusters, caching, bad parameters."""

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from tests.factories import (
    BLOCK_N,
    BLOCK_SIZE,
    block_code,
    point_m,
    put_points,
    put_reports,
)


def props(resp):
    return {f["properties"]["code"]: f["properties"] for f in resp.json()["features"]}


def test_aggregates_give_count_density_and_rate(client, block):
    put_reports(block, {(0, 0): 5, (3, 3): 2}, np.random.default_rng(1))
    p = props(client.get("/api/v1/hotspots/grids", params={"theme": "flood"}))
    first = p[block_code(0, 0)]
    assert first["count"] == 5
    assert first["density_km2"] == pytest.approx(5 / 0.25, rel=0.01)  # 500 m squares
    assert first["rate_per_1000"] == pytest.approx(5 / 1000 * 1000, rel=1e-3)
    assert sum(x["count"] for x in p.values()) == 7


def test_report_in_exclusive_grid_counts_for_the_grid_beneath_too(client, block):
    put_reports(block, {}, np.random.default_rng(1))
    lon, lat = point_m(1200, 1200)  # inside the school, inside grid (2, 2)
    client.post(
        "/api/v1/reports",
        json={"lon": lon, "lat": lat, "theme": "flood", "category": "waterlogging"},
    )
    body = client.get("/api/v1/hotspots/grids").json()
    assert props_from(body)[block_code(2, 2)]["count"] == 1
    assert body["exclusive"] == [{"code": "230602001001901", "count": 1}]


def props_from(body):
    return {f["properties"]["code"]: f["properties"] for f in body["features"]}


def test_planted_cluster_is_a_99_percent_hot_spot(client, block):
    rng = np.random.default_rng(7)
    cells = {(i, j): int(rng.poisson(2)) for i in range(BLOCK_N) for j in range(BLOCK_N)}
    for c in [(4, 4), (4, 5), (5, 4), (5, 5)]:
        cells[c] = 30
    put_reports(block, cells, rng)
    p = props(client.get("/api/v1/hotspots/gistar", params={"theme": "flood"}))
    for c in [(4, 4), (4, 5), (5, 4), (5, 5)]:
        assert p[block_code(*c)]["class"] == "hot_99", p[block_code(*c)]
    far = [p[block_code(i, j)]["class"] for i, j in [(0, 0), (9, 9), (0, 9), (9, 0)]]
    assert not any(c.startswith("hot") for c in far)


def test_uniform_background_has_few_significant_grids(client, block):
    rng = np.random.default_rng(11)
    put_reports(
        block, {(i, j): int(rng.poisson(5)) for i in range(BLOCK_N) for j in range(BLOCK_N)}, rng
    )
    body = client.get("/api/v1/hotspots/gistar", params={"theme": "flood"}).json()
    significant = sum(v for k, v in body["classes"].items() if k != "not_significant")
    # At 90 % confidence about 10 % are expected by chance; neighbours share counts.
    assert significant <= 20, body["classes"]


def test_gi_star_z_scores_equal_esda_on_the_same_counts_and_weights(demo_client, demo_engine):
    import esda
    import geopandas as gpd
    import libpysal
    import shapely

    body = demo_client.get("/api/v1/hotspots/gistar", params={"theme": "road_safety"}).json()
    with demo_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, ST_AsBinary(geom) FROM grids "
                "WHERE kind = 'comprehensive' ORDER BY code"
            )
        ).all()
    frame = gpd.GeoDataFrame(
        {"code": [r[0] for r in rows]},
        geometry=shapely.from_wkb([bytes(r[1]) for r in rows]),
        crs=4326,
    )
    w = libpysal.weights.Queen.from_dataframe(frame, use_index=False, silence_warnings=True)
    counts = props_from(body)
    y = np.array([counts[c]["count"] for c in frame["code"]], dtype=float)
    g = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    z_api = np.array([counts[c]["z"] for c in frame["code"]], dtype=float)
    np.testing.assert_allclose(z_api, np.round(g.Zs, 4), atol=1e-4)
    assert len(y) == 4880 and y.sum() == body["total"] > 3000


def test_sparse_theme_has_no_cold_spots_where_nothing_was_reported(client, block):
    # Three reports in one corner: 90-odd grids with no report in their neighbourhood, whose
    # every simulation ties with them. Not significant: nothing happened there, that is all.
    put_reports(block, {(0, 0): 2, (1, 0): 1}, np.random.default_rng(3))
    body = client.get("/api/v1/hotspots/gistar", params={"theme": "flood"}).json()
    p = props_from(body)
    quiet = [p[block_code(i, j)] for i in range(3, BLOCK_N) for j in range(3, BLOCK_N)]
    assert all(q["class"] == "not_significant" for q in quiet), body["classes"]
    assert all(q["p"] > 0.1 for q in quiet)
    assert not any(k.startswith("cold") and v for k, v in body["classes"].items())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # esda's note on its default
def test_gi_star_p_reads_esdas_own_simulations_with_ties_counted(demo_engine):
    from esda import G_Local

    from geo.analytics.counts import grid_counts
    from geo.analytics.gistar import gi_star
    from geo.analytics.weights import weights
    from geo.cache import versions
    from geo.grids.layer import grid_layer
    from geo.reports.queries import ReportFilter

    with demo_engine.connect() as conn:
        layer = grid_layer(conn, versions(conn))
        counts, _ = grid_counts(conn, ReportFilter(theme="fire"), layer)
    w = weights(layer)
    ours = gi_star(counts, w, permutations=999, seed=5)
    g = G_Local(counts, w.graph, "B", 999, True, True, 1, 5)
    ok = ~np.isnan(ours.z)
    np.testing.assert_allclose(ours.z[ok], g.Zs[ok])
    # The same simulations as esda's G_Local, counted as "at least as extreme" in z's direction.
    sims, obs = g.rGs, g.Gs[:, None]
    upper = (np.isclose(sims, obs) | (sims > obs)).sum(axis=1)
    lower = (np.isclose(sims, obs) | (sims < obs)).sum(axis=1)
    expected = (np.where(g.Zs >= 0, upper, lower) + 1) / 1000
    np.testing.assert_allclose(ours.p[ok], expected[ok])
    # Never more significant than esda's p_sim, which counts no tie against the grid.
    assert np.all(ours.p[ok] >= g.p_sim[ok] - 1e-6)  # esda's p_sim is float32
    # The weights kept for later requests are untouched (esda zeroes a diagonal in place).
    assert np.all(w.graph.sparse.diagonal() == 1)


def test_results_are_cached_until_a_report_arrives(client, block):
    rng = np.random.default_rng(3)
    put_reports(block, {(1, 1): 3}, rng)
    first = client.get("/api/v1/hotspots/gistar", params={"theme": "flood"})
    again = client.get("/api/v1/hotspots/gistar", params={"theme": "flood"})
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.content == first.content
    lon, lat = point_m(300, 300)
    client.post(
        "/api/v1/reports",
        json={"lon": lon, "lat": lat, "theme": "flood", "category": "waterlogging"},
    )
    fresh = client.get("/api/v1/hotspots/gistar", params={"theme": "flood"})
    assert fresh.headers["x-cache"] == "miss" and fresh.json()["total"] == 4


def test_fdr_and_distance_band_options(client, block):
    rng = np.random.default_rng(5)
    cells = {(i, j): int(rng.poisson(1)) for i in range(BLOCK_N) for j in range(BLOCK_N)}
    for i in (4, 5, 6):  # a planted 3 x 3 cluster
        for j in (4, 5, 6):
            cells[(i, j)] = 20
    put_reports(block, cells, rng)
    body = client.get(
        "/api/v1/hotspots/gistar",
        params={"theme": "flood", "fdr": "true", "weights": "distance", "distance_m": 800},
    ).json()
    assert body["method"]["fdr"] is True and body["method"]["weights"] == "distance"
    assert props_from(body)[block_code(5, 5)]["class"].startswith("hot")


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"theme": "weather"}, "unknown theme"),
        (
            {"since": "2024-09-01T00:00:00Z", "until": "2024-08-01T00:00:00Z"},
            "since must be before",
        ),
        ({"permutations": 5}, "permutations"),
        ({"weights": "distance"}, "needs distance_m"),
        ({"weights": "distance", "distance_m": -5}, "distance_m"),
        ({"weights": "rook"}, "weights"),
    ],
)
def test_bad_parameters_answer_422(client, block, params, needle):
    r = client.get("/api/v1/hotspots/gistar", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_dbscan_finds_the_planted_clusters(client, block):
    rng = np.random.default_rng(2)
    centres = [(600, 600), (3200, 1200), (1800, 4200)]
    xy = [(cx + rng.normal(0, 25), cy + rng.normal(0, 25)) for cx, cy in centres for _ in range(15)]
    xy += [(250, 4750), (4750, 250), (4750, 4750)]  # scattered noise
    put_points(block, xy)
    body = client.get(
        "/api/v1/hotspots/clusters", params={"theme": "fire", "eps_m": 100, "min_points": 5}
    ).json()
    assert [f["properties"]["count"] for f in body["features"]] == [15, 15, 15]
    assert body["noise"] == 3 and body["method"]["srid"] == 32651
    first_grids = {g for f in body["features"] for g in f["properties"]["grids"]}
    assert block_code(1, 1) in first_grids  # (600, 600) lies in grid (1, 1)
    assert all(f["properties"]["dominant_category"] == "electrical" for f in body["features"])


def test_hexbins_count_every_report_and_do_not_grow_with_volume(client, block):
    rng = np.random.default_rng(4)
    xy = [(rng.uniform(0, 5000), rng.uniform(0, 5000)) for _ in range(200)]
    put_points(block, xy)
    small = client.get("/api/v1/hotspots/hexbins", params={"theme": "fire", "size_m": 1000}).json()
    assert small["total"] == 200
    put_points(block, xy * 9)
    big = client.get("/api/v1/hotspots/hexbins", params={"theme": "fire", "size_m": 1000}).json()
    assert big["total"] == 2000 and len(big["features"]) == len(small["features"])


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("clusters", {"eps_m": 0}, "eps_m"),
        ("clusters", {"eps_m": -1}, "eps_m"),
        ("clusters", {"min_points": 1}, "min_points"),
        ("hexbins", {"size_m": 1}, "size_m"),
        ("hexbins", {"size_m": "nan"}, "size_m"),
    ],
)
def test_bad_cluster_parameters_answer_422(client, block, path, params, needle):
    r = client.get(f"/api/v1/hotspots/{path}", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_emerging_finds_a_new_hot_spot(client, block):
    rng = np.random.default_rng(9)
    start = pd.Timestamp("2024-08-01T00:00:00Z")
    rows = []
    for day in range(10):
        for i in range(BLOCK_N):
            for j in range(BLOCK_N):
                for _ in range(int(rng.poisson(1))):
                    rows.append((i, j, day))
        if day == 9:
            rows += [(5, 5, 9)] * 40
    xy = [
        ((i + rng.uniform(0.1, 0.9)) * BLOCK_SIZE, (j + rng.uniform(0.1, 0.9)) * BLOCK_SIZE)
        for i, j, _ in rows
    ]
    put_points(
        block,
        xy,
        "flood",
        "waterlogging",
        [start + pd.Timedelta(days=d, hours=12) for _, _, d in rows],
    )
    body = client.get(
        "/api/v1/hotspots/emerging",
        params={
            "theme": "flood",
            "since": "2024-08-01T00:00:00Z",
            "until": "2024-08-11T00:00:00Z",
            "step": "day",
        },
    ).json()
    assert body["slices"] == 10
    assert props_from(body)[block_code(5, 5)]["pattern"] == "new_hot"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "need since and until"),
        ({"since": "2024-08-01T00:00:00Z", "until": "2024-08-02T00:00:00Z"}, "at least 3"),
        (
            {"since": "2020-01-01T00:00:00Z", "until": "2024-08-02T00:00:00Z", "step": "day"},
            "at most 156",
        ),
        (
            {"since": "2024-08-01T00:00:00Z", "until": "2024-09-01T00:00:00Z", "step": "year"},
            "step",
        ),
    ],
)
def test_bad_emerging_parameters_answer_422(client, block, params, needle):
    r = client.get("/api/v1/hotspots/emerging", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]
