"""Report intake benchmark: single POST latency, throughput at concurrency 32, bulk import.

`python -m bench.assignment [--bulk-rows 219000]`. Each figure comes with a baseline measured
in the same run: the bare prepared SQL that inserts and assigns one report, and
`geopandas.sjoin` doing only the in-memory join of the bulk points.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from bench.common import RESULTS, Bench, bench_database, ms, server
from geo.reports.bulk import load
from geo.reports.files import read_reports
from geo.settings import ReportSettings

BARE_INSERT = """
INSERT INTO reports (id, theme, category, status, geom, assignment_method, grid_code,
                     reported_at)
SELECT %(id)s, 'gas', 'gas_leak', 'reported', p.g,
       CASE WHEN a.code IS NULL THEN 'unassigned' WHEN a.kind = 'exclusive' THEN 'exclusive'
            ELSE 'inside' END, a.code, now()
FROM (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
LEFT JOIN LATERAL (SELECT code, kind FROM grids WHERE ST_Covers(geom, p.g)
                   ORDER BY kind = 'exclusive' DESC, code LIMIT 1) a ON TRUE
"""


def sample_points(conn: psycopg.Connection, n: int, seed: int = 11) -> np.ndarray:
    """Return about n points inside the grids, spread like the population."""
    rows = conn.execute(
        """
        SELECT ST_X(p), ST_Y(p) FROM (
          SELECT (ST_Dump(ST_GeneratePoints(geom,
                   GREATEST(1, round(%(n)s * population / sum(population) OVER ())::int),
                   %(seed)s))).geom AS p
          FROM grids WHERE kind = 'comprehensive') s
        """,
        {"n": n, "seed": seed},
    ).fetchall()
    pts = np.asarray(rows, dtype=float)
    rng = np.random.default_rng(seed)
    return pts[rng.permutation(len(pts))[:n]]


def bench_single(b: Bench, pts: np.ndarray, n: int = 2000) -> dict:
    # Baseline: the bare statement, prepared, on a direct connection.
    bare = []
    with psycopg.connect(**b.dsn(), options="-c jit=off", autocommit=True) as conn:
        for lon, lat in pts[:n]:
            t0 = time.perf_counter()
            conn.execute(BARE_INSERT, {"id": uuid.uuid4(), "lon": lon, "lat": lat}, prepare=True)
            bare.append(time.perf_counter() - t0)
        conn.execute(
            "DELETE FROM reports WHERE description IS NULL AND reporter IS NULL "
            "AND campaign_code IS NULL AND severity = 2 AND theme = 'gas' "
            "AND created_at > now() - interval '1 hour'"
        )
    api = []
    with server(b) as port:
        c = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"content-type": "application/json", "authorization": f"Bearer {b.token()}"}
        for i, (lon, lat) in enumerate(pts[n : 2 * n + 300]):
            body = json.dumps(
                {
                    "lon": lon,
                    "lat": lat,
                    "theme": "fire",
                    "category": "electrical",
                    "accuracy_m": 15,
                }
            )
            t0 = time.perf_counter()
            c.request("POST", "/api/v1/reports", body, headers)
            r = c.getresponse()
            r.read()
            if i >= 300:  # warm-up first
                api.append(time.perf_counter() - t0)
            if r.status != 201:
                raise RuntimeError(f"POST answered {r.status}")
    return {
        "api_p50_ms": ms(api, 50),
        "api_p99_ms": ms(api, 99),
        "bare_sql_p50_ms": ms(bare, 50),
        "ratio_api_to_bare": statistics.median(api) / statistics.median(bare),
        "n": len(api),
    }


async def _load(
    port: int, bodies: list[bytes], concurrency: int, token: str
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = iter(bodies)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in queue:
            req = (
                b"POST /api/v1/reports HTTP/1.1\r\nHost: b\r\nContent-Type: application/json"
                b"\r\nAuthorization: Bearer "
                + token.encode()
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            t0 = time.perf_counter()
            writer.write(req)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if b" 201 " not in status:
                errors += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def bench_concurrent(
    b: Bench, pts: np.ndarray, workers: int, n: int = 6000, concurrency: int = 32
) -> dict:
    bodies = [
        json.dumps(
            {
                "lon": lon,
                "lat": lat,
                "theme": "road_safety",
                "category": "road_damage",
            }
        ).encode()
        for i, (lon, lat) in enumerate(pts[:n])
    ]
    with server(b, workers=workers) as port:
        asyncio.run(_load(port, bodies[:500], concurrency, b.token()))  # warm-up
        t0 = time.perf_counter()
        lat_s, errors = asyncio.run(_load(port, bodies[500:], concurrency, b.token()))
        wall = time.perf_counter() - t0
    return {
        "workers": workers,
        "concurrency": concurrency,
        "requests": len(lat_s),
        "per_s": len(lat_s) / wall,
        "p50_ms": ms(lat_s, 50),
        "p99_ms": ms(lat_s, 99),
        "errors": errors,
    }


def bench_bulk(b: Bench, pts: np.ndarray, tmp: Path) -> dict:
    rng = np.random.default_rng(5)
    n = len(pts)
    frame = pd.DataFrame(
        {
            "lon": np.round(pts[:, 0], 7),
            "lat": np.round(pts[:, 1], 7),
            "theme": "flood",
            "category": rng.choice(["waterlogging", "embankment", "drainage_blocked"], n),
            "reported_at": pd.Timestamp("2024-07-01T00:00:00+08:00")
            + pd.to_timedelta(rng.uniform(0, 86400 * 30, n), unit="s"),
            "reporter": [f"网格员{i % 5200:04d}" for i in range(n)],
        }
    )
    path = tmp / "bulk.csv"
    frame.to_csv(path, index=False)
    rules = ReportSettings()
    with psycopg.connect(**b.dsn()) as conn:
        grid_rows = conn.execute(
            "SELECT code, kind, ST_AsBinary(geom) FROM grids ORDER BY code"
        ).fetchall()
    grids = gpd.GeoDataFrame(
        {"code": [r[0] for r in grid_rows]},
        geometry=shapely.from_wkb([bytes(r[2]) for r in grid_rows]),
        crs=4326,
    )
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326)
    sj = []
    for _ in range(3):
        t0 = time.perf_counter()
        gpd.sjoin(points, grids, predicate="within")
        sj.append(time.perf_counter() - t0)

    from sqlalchemy import create_engine

    from geo.db.engine import make_engine
    from geo.settings import Settings

    url = b.cluster.url()
    engine = make_engine(Settings(), url)
    t0 = time.perf_counter()
    parsed = read_reports(path, rules, set())
    t_parse = time.perf_counter() - t0
    t1 = time.perf_counter()
    with engine.begin() as conn:
        result = load(conn, parsed.rows, rules)
    t_load = time.perf_counter() - t1
    total = time.perf_counter() - t0
    engine.dispose()
    del create_engine
    return {
        "rows": n,
        "inserted": result.inserted,
        "refused": len(parsed.errors) + len(result.refused),
        "parse_s": t_parse,
        "load_s": t_load,
        "total_s": total,
        "sjoin_s": min(sj),
        "ratio_total_to_sjoin": total / min(sj),
        "by_method": result.by_method,
    }


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bulk-rows", type=int, default=219_000)
    args = parser.parse_args()
    out: dict = {}
    import tempfile

    with bench_database() as b, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(**b.dsn()) as conn:
            pts = sample_points(conn, max(args.bulk_rows, 20_000))
        out["single"] = bench_single(b, pts[:10_000])
        out["concurrent"] = [bench_concurrent(b, pts[10_000:20_000], w) for w in (1, 2)]
        out["bulk"] = bench_bulk(b, pts[: args.bulk_rows], Path(tmp))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "assignment.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    return out


def _print(r: dict) -> None:
    s = r["single"]
    print(
        f"POST /reports, concurrency 1: p50 {s['api_p50_ms']:.2f} ms, p99 {s['api_p99_ms']:.2f} "
        f"ms; bare SQL p50 {s['bare_sql_p50_ms']:.3f} ms -> {s['ratio_api_to_bare']:.1f}x"
    )
    for c in r["concurrent"]:
        print(
            f"POST /reports, concurrency {c['concurrency']}, {c['workers']} worker(s): "
            f"{c['per_s']:.0f}/s, p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms, "
            f"errors {c['errors']}"
        )
    k = r["bulk"]
    print(
        f"bulk import of {k['rows']:,} rows: parse {k['parse_s']:.2f} s + load {k['load_s']:.2f}"
        f" s = {k['total_s']:.2f} s; geopandas.sjoin {k['sjoin_s']:.2f} s -> "
        f"{k['ratio_total_to_sjoin']:.1f}x ({k['by_method']})"
    )


if __name__ == "__main__":
    _print(main())
