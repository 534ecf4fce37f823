"""Foundation benchmark: `db up` from nothing, demo load, grid lookup and bbox query latency.

Run with `make bench` (or `python -m bench.foundation`). Everything runs against a throwaway
cluster in a temporary folder, so a developer's `.riskgrid/` is never touched. Latencies are
reported with a baseline measured in the same run (the bare prepared SQL statement), since
these machines are shared and noisy.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from bench.common import RESULTS, RISKGRID, UNLIMITED, admin_token, free_port, ms, run
from geo.db.local_cluster import Cluster


def _sample_points(conn: psycopg.Connection, n: int, seed: int = 7) -> list[tuple[float, float]]:
    # Points inside grids, weighted like reports would be: one random point per sampled grid.
    rows = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 1, %s))).geom AS p "
        "FROM grids WHERE kind = 'comprehensive' ORDER BY code) s",
        (seed,),
    ).fetchall()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(rows), n)
    return [rows[i] for i in idx]


def _bboxes(conn: psycopg.Connection, n: int) -> list[tuple[float, ...]]:
    """Return n bboxes around urban grids, each grown until it touches about 100 grids."""
    centres = conn.execute(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
        "WHERE district_code IN ('230602','230603','230604') AND kind = 'comprehensive' "
        "ORDER BY code LIMIT %s",
        (n,),
    ).fetchall()
    out = []
    for x, y in centres:
        half = 0.005
        for _ in range(30):
            env = (x - half, y - half, x + half, y + half)
            k = conn.execute(
                "SELECT count(*) FROM grids WHERE geom && ST_MakeEnvelope(%s,%s,%s,%s,4326) "
                "AND ST_Intersects(geom, ST_MakeEnvelope(%s,%s,%s,%s,4326))",
                env + env,
            ).fetchone()[0]
            if k >= 100:
                break
            half *= 1.15
        out.append(env)
    return out


def _http_latencies(port: int, paths: list[str], token: str | None = None) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out = []
    for p in paths:
        t0 = time.perf_counter()
        conn.request("GET", p, headers=headers)
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise RuntimeError(f"{p}: HTTP {resp.status}")
    conn.close()
    return out


def _sql_latencies(conn: psycopg.Connection, sql: str, params: list[tuple]) -> list[float]:
    out = []
    for p in params:
        t0 = time.perf_counter()
        conn.execute(sql, p, prepare=True).fetchall()
        out.append(time.perf_counter() - t0)
    return out


def _sql_baselines(conn: psycopg.Connection, points: list, bboxes: list) -> dict:
    """Time the bare prepared statements: the same-run baselines of the HTTP figures."""
    from geo.grids.queries import _LOOKUP  # the exact statement the endpoint runs

    lookup_sql = str(_LOOKUP).replace(":lon", "%s").replace(":lat", "%s")
    return {
        "bare": _sql_latencies(
            conn,
            "SELECT code FROM grids WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            points,
        ),
        "lookup": _sql_latencies(conn, lookup_sql, points),
        "bbox": _sql_latencies(
            conn,
            "SELECT code, ST_AsGeoJSON(geom, 7) FROM grids "
            "WHERE geom && ST_MakeEnvelope(%s,%s,%s,%s,4326) "
            "AND ST_Intersects(geom, ST_MakeEnvelope(%s,%s,%s,%s,4326)) "
            "ORDER BY code LIMIT 100",
            [b + b for b in bboxes],
        ),
    }


def _http_figures(env: dict, token: str, points: list, bboxes: list) -> dict:
    """Time lookups and bbox pages through the service (one worker, on loopback)."""
    port = free_port()
    server = subprocess.Popen(
        [RISKGRID, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                _http_latencies(port, ["/health"])
                break
            except OSError:
                time.sleep(0.05)
        lookup_paths = [f"/api/v1/grids/lookup?lon={x}&lat={y}" for x, y in points]
        _http_latencies(port, lookup_paths[:300], token)
        lookups = _http_latencies(port, lookup_paths, token)
        bbox_paths = [
            "/api/v1/grids?limit=100&bbox=" + ",".join(f"{v:.6f}" for v in b) for b in bboxes
        ]
        _http_latencies(port, bbox_paths[:20], token)
        return {"lookup": lookups, "bbox": _http_latencies(port, bbox_paths * 3, token)}
    finally:
        server.terminate()
        server.wait(10)


def _summary(http: dict, sql: dict) -> dict:
    lookups, bare, full_sql = http["lookup"], sql["bare"], sql["lookup"]
    return {
        "lookup": {
            "http_p50_ms": ms(lookups, 50),
            "http_p99_ms": ms(lookups, 99),
            "sql_same_statement_p50_ms": ms(full_sql, 50),
            "bare_st_covers_p50_ms": ms(bare, 50),
            "ratio_http_to_bare": statistics.median(lookups) / statistics.median(bare),
            "ratio_http_to_same_sql": statistics.median(lookups) / statistics.median(full_sql),
            "n": len(lookups),
        },
        "bbox_100": {
            "http_p50_ms": ms(http["bbox"], 50),
            "http_p99_ms": ms(http["bbox"], 99),
            "sql_p50_ms": ms(sql["bbox"], 50),
            "ratio_http_to_sql": statistics.median(http["bbox"]) / statistics.median(sql["bbox"]),
            "n": len(http["bbox"]),
        },
    }


def main() -> dict:
    results: dict = {"machine": {"cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="riskgrid-bench-", dir="/var/tmp") as tmp:
        home = Path(tmp) / ".riskgrid"
        env = {**os.environ, "RISKGRID_CLUSTER__HOME": str(home), **UNLIMITED}
        env.pop("DATABASE_URL", None)
        try:
            # 1. db up from nothing: initdb, start, CREATE EXTENSION, migrations (CLI, end to end).
            results["db_up_s"] = run([RISKGRID, "db", "up"], env)
            cluster = Cluster(home)
            # Python start-up alone, to show what the CLI's own time is made of.
            results["python_cli_startup_s"] = run([RISKGRID, "--help"], env)
            # 2. demo on the empty database, then again (nothing to change).
            results["demo_s"] = run([RISKGRID, "demo", "--out", str(Path(tmp) / "demo")], env)
            results["demo_again_s"] = run([RISKGRID, "demo", "--out", str(Path(tmp) / "demo")], env)
            dsn = dict(
                host=str(cluster.socket_dir),
                port=cluster.port,
                user="postgres",
                password=cluster.password(),
                dbname="riskgrid",
            )
            with psycopg.connect(**dsn, options="-c jit=off") as conn:
                points = _sample_points(conn, 3000)
                bboxes = _bboxes(conn, 100)
                sql = _sql_baselines(conn, points, bboxes)
            # 3. The service, one worker, on loopback.
            token = admin_token(cluster.url())
            results.update(_summary(_http_figures(env, token, points, bboxes), sql))
        finally:
            Cluster(home).down()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "foundation.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _print(r: dict) -> None:
    lk, bb = r["lookup"], r["bbox_100"]
    print(
        f"riskgrid db up from nothing (CLI)   {r['db_up_s']:.2f} s "
        f"(of which Python start-up {r['python_cli_startup_s']:.2f} s)"
    )
    print(
        f"riskgrid demo on empty database     {r['demo_s']:.1f} s "
        f"(again: {r['demo_again_s']:.1f} s)"
    )
    print(
        f"GET /grids/lookup, concurrency 1    p50 {lk['http_p50_ms']:.2f} ms, p99 "
        f"{lk['http_p99_ms']:.2f} ms (n={lk['n']})"
    )
    print(
        f"  same SQL statement, prepared      p50 {lk['sql_same_statement_p50_ms']:.3f} ms "
        f"-> HTTP/SQL {lk['ratio_http_to_same_sql']:.1f}x"
    )
    print(
        f"  bare ST_Covers, prepared          p50 {lk['bare_st_covers_p50_ms']:.3f} ms "
        f"-> HTTP/bare {lk['ratio_http_to_bare']:.1f}x"
    )
    print(
        f"GET /grids?bbox (100 grids)         p50 {bb['http_p50_ms']:.2f} ms, p99 "
        f"{bb['http_p99_ms']:.2f} ms; SQL p50 {bb['sql_p50_ms']:.2f} ms "
        f"-> {bb['ratio_http_to_sql']:.1f}x"
    )


if __name__ == "__main__":
    _print(main())
