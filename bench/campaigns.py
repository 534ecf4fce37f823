"""Campaign benchmark: coverage (GeoJSON per grid) and progress (per day and district) of one
campaign with 300,000 visits over the demo's 4,964 grids.

`python -m bench.campaigns`. 创安四号 gets 300,000 visits spread over every grid and its five
days (3 % of them relocating someone), 20,000 targets of which a third are visited, beside its
3,139 reports. Coverage "cold" is the first request of a new server process (nothing cached
in the process; the database's buffers warm); each figure is also a p50 over repeated
requests. Baselines of the same run: GET /api/v1/auth/me (a trivial logged-in route), and the
bare SQL floor of each answer (the grids' GeoJSON with nothing joined; the visits' per-day
count). The issue's targets: coverage < 1 s cold, progress < 300 ms.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time

import psycopg

from bench.common import RESULTS, bench_database, ms, role_token, server

CAMPAIGN = "CA04"
VISITS = 300_000
TARGETS = 20_000
ROUNDS = 20
WARM_UP = 2
COLD_STARTS = 3

# One point inside each grid, numbered, to draw visits from at random.
GRID_POINTS = """
CREATE TABLE bench_grid_points AS
SELECT row_number() OVER (ORDER BY code) AS n, code, district_code,
       ST_PointOnSurface(geom) AS p
FROM grids
"""
TARGET_ROWS = """
INSERT INTO campaign_targets (id, campaign_code, register, ref, name, geom, grid_code,
                              district_code)
SELECT gen_random_uuid(), CAST(%(c)s AS varchar), 'venues', 'B' || i, '场所' || i, g.p, g.code,
       g.district_code
FROM (SELECT i, 1 + floor(random() * (SELECT count(*) FROM bench_grid_points))::int AS k
      FROM generate_series(1, %(n)s) i) x
JOIN bench_grid_points g ON g.n = x.k
"""
VISIT_ROWS = """
INSERT INTO visits (id, campaign_code, visitor, geom, source_crs, grid_code,
                    assignment_method, district_code, target_id, answers, leaflets, stickers,
                    visited_at, request_hash)
SELECT gen_random_uuid(), CAST(%(c)s AS varchar), 'bench', g.p, 'wgs84', g.code, 'inside',
       g.district_code, NULL,
       jsonb_build_object('low_lying', x.r < 0.2, 'drainage_ok', x.r > 0.1,
                          'to_relocate', CASE WHEN x.r < 0.03 THEN 1 + floor(x.r * 100)::int
                                         ELSE 0 END,
                          'households_moved', (x.r < 0.03)::int),
       floor(random() * 3)::int, floor(random() * 2)::int,
       timestamptz '2023-07-25 00:00+08' + random() * interval '5 days', 'bench'
FROM (SELECT i, random() AS r,
             1 + floor(random() * (SELECT count(*) FROM bench_grid_points))::int AS k
      FROM generate_series(1, %(n)s) i) x
JOIN bench_grid_points g ON g.n = x.k
"""
# A third of the targets visited: one visit each, in the target's grid.
TARGET_VISITS = """
INSERT INTO visits (id, campaign_code, visitor, geom, source_crs, grid_code,
                    assignment_method, district_code, target_id, answers, visited_at,
                    request_hash)
SELECT gen_random_uuid(), CAST(%(c)s AS varchar), 'bench', t.geom, 'wgs84', t.grid_code, 'inside',
       t.district_code, t.id, '{"low_lying": false}',
       timestamptz '2023-07-25 00:00+08' + random() * interval '5 days', 'bench'
FROM campaign_targets t WHERE t.campaign_code = CAST(%(c)s AS varchar) AND random() < 1.0 / 3
"""
FLOOR_COVERAGE = "SELECT code, ST_AsGeoJSON(geom, 6) FROM grids ORDER BY code"
FLOOR_PROGRESS = """
SELECT (visited_at AT TIME ZONE 'Asia/Shanghai')::date, district_code, count(*)
FROM visits WHERE campaign_code = CAST(%(c)s AS varchar) GROUP BY 1, 2
"""


def _times(port: int, path: str, token: str, rounds: int) -> tuple[list[float], int]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out, size = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        c.request("GET", path, headers={"authorization": f"Bearer {token}"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {r.status} {body[:300]!r}")
        out.append(time.perf_counter() - t0)
        size = len(body)
    c.close()
    return out, size


def _floor(dsn: dict, sql: str, rounds: int = 10) -> list[float]:
    out = []
    with psycopg.connect(**dsn) as conn:
        for _ in range(rounds):
            t0 = time.perf_counter()
            conn.execute(sql, {"c": CAMPAIGN}).fetchall()
            out.append(time.perf_counter() - t0)
    return out


def _load(dsn: dict) -> dict:
    with psycopg.connect(**dsn) as conn:
        t0 = time.perf_counter()
        conn.execute(GRID_POINTS)
        conn.execute(TARGET_ROWS, {"c": CAMPAIGN, "n": TARGETS})
        conn.execute(VISIT_ROWS, {"c": CAMPAIGN, "n": VISITS})
        conn.execute(TARGET_VISITS, {"c": CAMPAIGN})
        conn.execute("DROP TABLE bench_grid_points")
        conn.execute("ANALYZE visits")
        conn.execute("ANALYZE campaign_targets")
        load_s = time.perf_counter() - t0
        row = conn.execute(
            "SELECT (SELECT count(*) FROM grids), count(*), count(target_id) FROM visits "
            "WHERE campaign_code = %s",
            (CAMPAIGN,),
        ).fetchone()
    return {"grids": row[0], "visits": row[1], "target_visits": row[2], "load_s": load_s}


def main() -> dict:
    with bench_database() as b:
        token = role_token(b.cluster.url(), "bench-planner", "planner")
        sizes = _load(b.dsn())
        coverage = f"/api/v1/campaigns/{CAMPAIGN}/coverage"
        progress = f"/api/v1/campaigns/{CAMPAIGN}/progress"
        cold = []
        for _ in range(COLD_STARTS):
            with server(b) as port:
                cold.append(_times(port, coverage, token, 1)[0][0])
        with server(b) as port:
            me = _times(port, "/api/v1/auth/me", token, ROUNDS)[0][WARM_UP:]
            warm, cov_bytes = _times(port, coverage, token, ROUNDS)
            prog, prog_bytes = _times(port, progress, token, ROUNDS)
            district, _ = _times(port, f"{progress}?district=230603", token, ROUNDS)
        floor_cov = _floor(b.dsn(), FLOOR_COVERAGE)
        floor_prog = _floor(b.dsn(), FLOOR_PROGRESS)
    med_me = statistics.median(me)
    out = {
        **sizes,
        "auth_me_p50_ms": ms(me, 50),
        "coverage_cold_ms": [round(t * 1000, 1) for t in cold],
        "coverage_cold_max_ms": max(cold) * 1000,
        "coverage_p50_ms": ms(warm[WARM_UP:], 50),
        "coverage_bytes": cov_bytes,
        "coverage_floor_sql_p50_ms": ms(floor_cov, 50),
        "coverage_ratio_auth_me": statistics.median(warm[WARM_UP:]) / med_me,
        "coverage_ratio_floor": statistics.median(warm[WARM_UP:]) / statistics.median(floor_cov),
        "progress_p50_ms": ms(prog[WARM_UP:], 50),
        "progress_first_ms": prog[0] * 1000,
        "progress_bytes": prog_bytes,
        "progress_district_p50_ms": ms(district[WARM_UP:], 50),
        "progress_floor_sql_p50_ms": ms(floor_prog, 50),
        "progress_ratio_auth_me": statistics.median(prog[WARM_UP:]) / med_me,
        "progress_ratio_floor": statistics.median(prog[WARM_UP:]) / statistics.median(floor_prog),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "campaigns.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(r: dict) -> None:
    print(
        f"{r['grids']:,} grids, {r['visits']:,} visits ({r['target_visits']:,} to targets), "
        f"loaded in {r['load_s']:.1f} s; GET /auth/me p50 {r['auth_me_p50_ms']:.1f} ms"
    )
    print(
        f"coverage cold {r['coverage_cold_ms']} ms (target < 1000), warm p50 "
        f"{r['coverage_p50_ms']:.0f} ms = {r['coverage_ratio_auth_me']:.0f}x /auth/me = "
        f"{r['coverage_ratio_floor']:.1f}x the bare grids' GeoJSON "
        f"({r['coverage_floor_sql_p50_ms']:.0f} ms); {r['coverage_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"progress p50 {r['progress_p50_ms']:.0f} ms (target < 300; first "
        f"{r['progress_first_ms']:.0f} ms, one district {r['progress_district_p50_ms']:.0f} ms) "
        f"= {r['progress_ratio_auth_me']:.0f}x /auth/me = {r['progress_ratio_floor']:.1f}x the "
        f"bare per-day count ({r['progress_floor_sql_p50_ms']:.0f} ms)"
    )


if __name__ == "__main__":
    _print(main())
