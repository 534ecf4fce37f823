"""Flood risk benchmark: the whole-city ranking and an area query over about 200 grids.

`python -m bench.risk`. Cold means the answer is not cached: a flood report is added before
each ranking request (the data version moves), and area queries are never cached. Baselines,
in the same run: shapely/geopandas computing the same overlays in memory (flood-zone shares per
grid and distances to water in UTM; the grid shares and households inside the polygon).
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
import uuid

import geopandas as gpd
import numpy as np
import psycopg
import shapely
import shapely.geometry

from bench.common import RESULTS, bench_database, http_get, ms, server
from bench.maps import NEW_REPORT

RANKING = "/api/v1/risk/grids?theme=flood"
# Over 萨尔图 and 龙凤: about 200 urban grids.
BOX = shapely.box(125.006, 46.522, 125.094, 46.578)


def http_post(port: int, path: str, body: dict, token: str) -> tuple[float, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    c.request("POST", path, data, headers)
    r = c.getresponse()
    payload = r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise RuntimeError(f"{path}: HTTP {r.status} {payload[:200]!r}")
    return dt, json.loads(payload)


def _frames(conn: psycopg.Connection) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, np.ndarray]:
    grids = conn.execute(
        "SELECT code, ST_AsBinary(geom) FROM grids WHERE kind = 'comprehensive' ORDER BY code"
    ).fetchall()
    layers = conn.execute("SELECT kind, level, ST_AsBinary(geom) FROM risk_layers").fetchall()
    homes = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM households").fetchall()
    g = gpd.GeoDataFrame(
        {"code": [r[0] for r in grids]},
        geometry=shapely.from_wkb([bytes(r[1]) for r in grids]),
        crs=4326,
    )
    lay = gpd.GeoDataFrame(
        {"kind": [r[0] for r in layers], "level": [r[1] for r in layers]},
        geometry=shapely.from_wkb([bytes(r[2]) for r in layers]),
        crs=4326,
    )
    return g, lay, np.asarray(homes, dtype=float)


def baseline_ranking(grids: gpd.GeoDataFrame, layers: gpd.GeoDataFrame) -> float:
    """Seconds for shapely to compute flood shares per level and distances to water (UTM)."""
    t0 = time.perf_counter()
    g = grids.to_crs(32651)
    lay = layers.to_crs(32651)
    area = g.area.to_numpy()
    for level in (1, 2, 3):
        zone = shapely.union_all(
            lay[(lay["kind"] == "flood_zone") & (lay["level"] >= level)].geometry.to_numpy()
        )
        hit = shapely.intersects(g.geometry.to_numpy(), zone)
        shapely.area(shapely.intersection(g.geometry.to_numpy()[hit], zone)) / area[hit]
    water = shapely.union_all(lay[lay["kind"].isin(["river", "reservoir"])].geometry.to_numpy())
    shapely.distance(g.geometry.to_numpy(), water)
    return time.perf_counter() - t0


def baseline_area(grids: gpd.GeoDataFrame, homes: np.ndarray) -> tuple[float, int]:
    """Seconds for shapely to find the grids in BOX with their shares, and the households."""
    t0 = time.perf_counter()
    geoms = grids.geometry.to_numpy()
    idx = shapely.STRtree(geoms).query(BOX, predicate="intersects")
    inside = shapely.area(shapely.intersection(geoms[idx], BOX)) / shapely.area(geoms[idx])
    shapely.contains_xy(BOX, homes[:, 0], homes[:, 1]).sum()
    return time.perf_counter() - t0, int((inside > 0).sum())


def main() -> dict:
    out: dict = {}
    with bench_database() as b, server(b, workers=1) as port:
        time.sleep(3)
        with psycopg.connect(**b.dsn(), autocommit=True) as conn:
            grids, layers, homes = _frames(conn)
            first, body, _ = http_get(port, RANKING, b.token())
            cold, cached = [], []
            for _ in range(7):
                conn.execute(NEW_REPORT, (str(uuid.uuid4()),))
                cold.append(http_get(port, RANKING, b.token())[0])
                cached.append(http_get(port, RANKING, b.token())[0])
            geometry = shapely.geometry.mapping(BOX)
            area, answer = [], {}
            for _ in range(9):
                dt, answer = http_post(
                    port, "/api/v1/risk/query", {"geometry": geometry}, b.token()
                )
                area.append(dt)
        base_rank = [baseline_ranking(grids, layers) for _ in range(3)]
        base_area = [baseline_area(grids, homes) for _ in range(5)]
    out = {
        "grids": len(grids),
        "ranking_first_ms": first * 1000,
        "ranking_cold_p50_ms": ms(cold, 50),
        "ranking_cached_p50_ms": ms(cached, 50),
        "ranking_kb": len(body) / 1000,
        "shapely_ranking_overlays_ms": statistics.median(base_rank) * 1000,
        "ratio_ranking_to_shapely": statistics.median(cold) / statistics.median(base_rank),
        "area_grids": len(answer["grids"]),
        "area_households": answer["households"]["households"],
        "area_p50_ms": ms(area, 50),
        "shapely_area_ms": statistics.median(t for t, _ in base_area) * 1000,
        "shapely_area_grids": base_area[0][1],
        "ratio_area_to_shapely": statistics.median(area)
        / statistics.median(t for t, _ in base_area),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "risk.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    r = main()
    print(
        f"whole-city flood ranking ({r['grids']:,} grids, {r['ranking_kb']:.0f} KB GeoJSON): "
        f"cold p50 {r['ranking_cold_p50_ms']:.0f} ms (first {r['ranking_first_ms']:.0f} ms), "
        f"cached p50 {r['ranking_cached_p50_ms']:.1f} ms; shapely overlays alone "
        f"{r['shapely_ranking_overlays_ms']:.0f} ms -> {r['ratio_ranking_to_shapely']:.2f}x"
    )
    print(
        f"area query over {r['area_grids']} grids ({r['area_households']:,} households): p50 "
        f"{r['area_p50_ms']:.0f} ms; shapely alone {r['shapely_area_ms']:.0f} ms -> "
        f"{r['ratio_area_to_shapely']:.1f}x"
    )
