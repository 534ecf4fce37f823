"""Flood ranking and area queries on the Daqing demo, against shapely/pyproj on the same data.

The independent side reads the stored grids, risk features, reports and households, and
measures with shapely (overlays), pyproj.Geod (geodesic areas) and UTM 51N (distances).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer
from sqlalchemy import text

from geo.cache import versions
from geo.identity.principal import SYSTEM
from geo.risk import area_query, ranking
from geo.settings import AuthSettings, ReportSettings, RiskSettings
from geo.vocabulary import ACTIVE_STATUSES

GEOD = Geod(ellps="WGS84")
TO_UTM = Transformer.from_crs(4326, 32651, always_xy=True)
RULES = RiskSettings()
AUTH = AuthSettings()
MARGIN_M = ReportSettings().service_area_margin_m


def geodesic_m2(geom: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) if not geom.is_empty else 0.0


def utm(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(TO_UTM.transform(*xy.T)))


@pytest.fixture(scope="module")
def world(demo_engine):
    with demo_engine.connect() as conn:
        grids = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT code, ST_AsBinary(geom) AS wkb FROM grids "
                    "WHERE kind = 'comprehensive' ORDER BY code"
                )
            ).all()
        )
        layers = pd.DataFrame(
            conn.execute(
                text("SELECT kind, code, level, ST_AsBinary(geom) AS wkb FROM risk_layers")
            ).all()
        )
        reports = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT theme, category, status, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                    "FROM reports"
                )
            ).all()
        )
        homes = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT code, members, over_60, oldest_age, living_alone, mobility_needs, "
                    "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM households"
                )
            ).all()
        )
        ranked = ranking.ranking(conn, ranking.RankSpec(), RULES, versions(conn))
    grids["geom"] = shapely.from_wkb([bytes(b) for b in grids["wkb"]])
    layers["geom"] = shapely.from_wkb([bytes(b) for b in layers["wkb"]])
    return {
        "grids": grids,
        "layers": layers,
        "reports": reports,
        "homes": homes,
        "ranked": ranked.set_index("code"),
    }


def zone_union(layers: pd.DataFrame, kind: str, min_level: int = 1) -> shapely.Geometry:
    sel = layers[(layers["kind"] == kind) & (layers["level"].fillna(1) >= min_level)]
    return shapely.union_all(sel["geom"].to_numpy())


def test_flood_shares_equal_geodesic_overlays(world):
    grids, ranked = world["grids"], world["ranked"]
    area = np.array([geodesic_m2(g) for g in grids["geom"]])
    checked = 0
    for level, column in (
        (1, "flood_share_low_plus"),
        (2, "flood_share_medium_plus"),
        (3, "flood_share_high"),
    ):
        zone = zone_union(world["layers"], "flood_zone", level)
        hit = shapely.intersects(grids["geom"].to_numpy(), zone)
        inside = np.zeros(len(grids))
        inside[hit] = [
            geodesic_m2(g) for g in shapely.intersection(grids["geom"].to_numpy()[hit], zone)
        ]
        theirs = (
            ranked.loc[grids["code"], column].to_numpy()
            * ranked.loc[grids["code"], "area_km2"].to_numpy()
            * 1e6
        )
        big = inside > 10_000  # compare areas above 1 ha in relative terms (0.5 %)
        assert big.sum() > 50
        np.testing.assert_allclose(theirs[big], inside[big], rtol=0.005)
        # Grids the zones miss score nothing for them.
        assert (theirs[~hit] == 0).all()
        checked += int(big.sum())
    assert checked > 300
    np.testing.assert_allclose(
        ranked.loc[grids["code"], "area_km2"].to_numpy() * 1e6, area, rtol=0.005
    )


def test_water_distances_equal_utm_distances(world):
    grids, ranked = world["grids"], world["ranked"]
    water = world["layers"][world["layers"]["kind"].isin(["river", "reservoir"])]
    target = utm(shapely.union_all(water["geom"].to_numpy()))
    mine = np.array([shapely.distance(utm(g), target) for g in grids["geom"]])
    theirs = ranked.loc[grids["code"], "water_distance_m"].to_numpy(dtype=float)
    near = mine <= ranking.WATER_SEARCH_M - 1
    far = mine > ranking.WATER_SEARCH_M + 1
    assert near.sum() > 500 and far.sum() > 500
    touching = near & (mine < 1)
    np.testing.assert_allclose(theirs[near & ~touching], mine[near & ~touching], rtol=0.005)
    assert (theirs[touching] < 1).all()
    assert np.isnan(theirs[far]).all()


def test_hazard_and_household_counts_and_score_follow_the_formula(world):
    grids, ranked = world["grids"], world["ranked"]
    tree = shapely.STRtree(grids["geom"].to_numpy())

    def per_grid(lon, lat) -> pd.Series:
        pts = shapely.points(lon, lat)
        idx_pt, idx_grid = tree.query(pts, predicate="intersects")
        # A point on a shared edge counts for the lowest code, as assignment does.
        pairs = pd.DataFrame({"pt": idx_pt, "code": grids["code"].to_numpy()[idx_grid]})
        first = pairs.sort_values(["pt", "code"]).drop_duplicates("pt")
        return first.set_index("pt")["code"]

    r = world["reports"]
    open_flood = r[(r["theme"] == "flood") & r["status"].isin(ACTIVE_STATUSES)]
    codes = per_grid(open_flood["lon"].to_numpy(), open_flood["lat"].to_numpy())
    hazards = codes.value_counts()
    assert hazards.sum() > 10
    for code, n in hazards.items():
        assert ranked.loc[code, "open_flood_hazards"] == n
    h = world["homes"]
    where = per_grid(h["lon"].to_numpy(), h["lat"].to_numpy())
    h = h.iloc[where.index].assign(code=where.to_numpy())
    residents = h.groupby("code")["members"].sum()
    assert residents.sum() == ranked["residents"].sum() == world["homes"]["members"].sum()
    sample = residents.sample(200, random_state=1)
    assert (ranked.loc[sample.index, "residents"].to_numpy() == sample.to_numpy()).all()
    # The score, recomputed from the returned parts with the documented formula.
    top = ranked.head(300)
    exposure = (
        top["flood_share_low_plus"] + top["flood_share_medium_plus"] + top["flood_share_high"]
    ) / 3
    d = top["water_distance_m"].to_numpy(dtype=float)
    proximity = np.where(np.isnan(d), 0, np.clip(1 - d / RULES.buffer_m, 0, 1))
    hz = top["open_flood_hazards"] / (top["open_flood_hazards"] + RULES.hazards_half)
    v = top["vulnerable_residents"] / (top["vulnerable_residents"] + RULES.vulnerable_half)
    score = 100 * (
        RULES.exposure * exposure
        + RULES.low_lying * top["low_lying_share"]
        + RULES.proximity * proximity
        + RULES.hazards * hz
        + RULES.vulnerable * v
    )
    np.testing.assert_allclose(top["score"], score, atol=0.02)
    assert (np.diff(ranked["score"].to_numpy()) <= 0).all()
    assert list(ranked["rank"][:3]) == [1, 2, 3]


def test_min_level_counts_only_higher_zones(demo_engine, world):
    with demo_engine.connect() as conn:
        high = ranking.ranking(
            conn, ranking.RankSpec(min_level=3), RULES, versions(conn)
        ).set_index("code")
    low = world["ranked"]
    inside = low.index[low["flood_share_high"] > 0.99]
    assert len(inside) >= 3
    # Wholly in a high zone: exposure 1 at any threshold; only in a low zone: 0 at level 3.
    assert (high.loc[inside, "exposure_part"] > 0.99).all()
    only_low = low.index[
        (low["flood_share_low_plus"] > 0.99) & (low["flood_share_medium_plus"] == 0)
    ]
    assert len(only_low) > 10
    assert (high.loc[only_low, "exposure_part"] == 0).all()
    np.testing.assert_allclose(
        low.loc[only_low, "exposure_part"], low.loc[only_low, "flood_share_low_plus"] / 3, atol=1e-5
    )


def test_area_query_equals_shapely_over_about_200_grids(demo_engine, world):
    # A rectangle over 萨尔图 and 龙凤, about 200 urban grids.
    poly = shapely.box(125.0, 46.52, 125.10, 46.58)
    with demo_engine.connect() as conn:
        area = area_query.check_area(poly, False, RULES)
        got = area_query.area_query(conn, area, SYSTEM, AUTH)
    grids = world["grids"]
    hit = shapely.intersects(grids["geom"].to_numpy(), poly)
    inter = shapely.intersection(grids["geom"].to_numpy()[hit], poly)
    mine = {
        code: geodesic_m2(g) / geodesic_m2(whole)
        for code, g, whole in zip(grids["code"][hit], inter, grids["geom"][hit], strict=True)
        if geodesic_m2(g) > 0
    }
    theirs = {g["code"]: g["share_inside"] for g in got["grids"]}
    assert 150 <= len(theirs) <= 400
    assert set(theirs) == {c for c, s in mine.items() if s > 1e-9} | (set(theirs) - set(mine))
    for code, share in mine.items():
        if share > 0.01:
            assert theirs[code] == pytest.approx(share, rel=0.005, abs=1e-4)
    assert got["area_km2"] == pytest.approx(geodesic_m2(poly) / 1e6, rel=0.005)
    h = world["homes"]
    inside = h[shapely.contains_xy(poly, h["lon"], h["lat"])]
    assert got["households"]["households"] == len(inside) > 0
    assert got["households"]["residents"] == inside["members"].sum()
    order = [r["code"] for r in got["relocation"]]
    assert sorted(order) == sorted(inside["code"])
    first = got["relocation"][0]
    assert first["living_alone"] and first["priority"] == 1
    # Priority: alone, then mobility needs, then age, then zone level.
    keys = [
        (not r["living_alone"], not r["mobility_needs"], -(r["oldest_age"] or 0), -r["zone_level"])
        for r in got["relocation"]
    ]
    assert keys == sorted(keys)


def test_households_near_the_nen_are_in_the_high_zone(demo_engine, world):
    with demo_engine.connect() as conn:
        service = area_query.service_area(conn, versions(conn), MARGIN_M)
        area = area_query.area_around_feature(conn, "river", "nen", 1500.0, RULES, service)
        got = area_query.area_query(conn, area, SYSTEM, AUTH)
    # The river line itself, measured in UTM.
    line = utm(world["layers"].set_index("code").loc["nen", "geom"])
    h = world["homes"]
    pts = shapely.points(*TO_UTM.transform(h["lon"].to_numpy(), h["lat"].to_numpy()))
    d = shapely.distance(pts, line)
    sure_in, sure_out = d < 1495, d > 1505  # a 5 m margin for geodesic vs UTM buffers
    codes = {r["code"] for r in got["relocation"]}
    assert set(h["code"][sure_in]) <= codes
    assert not (set(h["code"][sure_out]) & codes)
    assert len(codes) > 100
    levels = [r["zone_level"] for r in got["relocation"]]
    assert levels.count(3) / len(levels) > 0.95
