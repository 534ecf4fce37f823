"""Evaluation benchmark (综合评价): GET /api/v1/evaluation by department, district, street and
grid worker, the monthly trend and the page, at the demo's volume and at ten times its
reports with their histories (250,000 reports, 1.26 million transitions).

`python -m bench.evaluation`. Each figure is a p50 over repeated requests to one `riskgrid
serve` process, with GET /api/v1/auth/me (a trivial logged-in route) and a plain SQL pass
over the transitions (`SELECT count(*) FROM report_events`, what the evaluation read before
each report's loop was kept in one row, migration 0010) timed in the same run as baselines.
The issue's target: by department over 250,000 reports < 1 s.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time

import psycopg

from bench.common import RESULTS, bench_database, ms, role_token, server

ROUNDS = 7
WARM_UP = 1
# No statistics warm-up beside the measurements (it imports esda and builds grid weights).
QUIET = {"RISKGRID_WARM_UP": "false"}
# Nine copies of every demo report with its whole history (new ids, same places, times and
# states): ten times the reports and the transitions, as an evaluation reads them.
TENFOLD = """
CREATE TEMP TABLE copies AS SELECT id AS old, gen_random_uuid() AS new
  FROM reports, generate_series(1, 9);
INSERT INTO reports (id, theme, category, severity, status, status_changed_at, due_at,
  description, geom, source_crs, district_code, grid_code, assignment_method,
  assignment_distance_m, department, resolution_level, campaign_code, reporter, reporter_id,
  reported_at, handler_id, supervised_at, supervised_by, supervision_note, rework_count,
  return_count, on_site)
SELECT c.new, theme, category, severity, status, status_changed_at, due_at, description, geom,
  source_crs, district_code, grid_code, assignment_method, assignment_distance_m, department,
  resolution_level, campaign_code, reporter, reporter_id, reported_at, handler_id,
  supervised_at, supervised_by, supervision_note, rework_count, return_count, on_site
FROM reports r JOIN copies c ON c.old = r.id;
INSERT INTO report_events (report_id, kind, from_status, to_status, from_grid, to_grid, actor,
  note, level, at, reason, department, handler_id, duplicate_of, actor_id)
SELECT c.new, kind, from_status, to_status, from_grid, to_grid, actor, note, level, at, reason,
  department, handler_id, duplicate_of, actor_id
FROM report_events e JOIN copies c ON c.old = e.report_id;
ANALYZE reports;
ANALYZE report_events;
ANALYZE report_loops;
"""
PATHS = (
    ("department", "/api/v1/evaluation?by=department"),
    ("department_2024", "/api/v1/evaluation?by=department&period=2024"),
    ("district", "/api/v1/evaluation?by=district"),
    ("street", "/api/v1/evaluation?by=street"),
    ("worker", "/api/v1/evaluation?by=worker"),
    ("trend", "/api/v1/evaluation/trend?by=department"),
    ("page", "/evaluation?by=department"),
)


def _times(port: int, path: str, token: str, rounds: int = ROUNDS) -> list[float]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out = []
    for i in range(rounds + WARM_UP):
        t0 = time.perf_counter()
        c.request("GET", path, headers={"authorization": f"Bearer {token}"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {r.status} {body[:300]!r}")
        if i >= WARM_UP:
            out.append(time.perf_counter() - t0)
    c.close()
    return out


def _scan(dsn: dict) -> list[float]:
    with psycopg.connect(**dsn) as conn:
        out = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            conn.execute("SELECT count(*) FROM report_events").fetchone()
            out.append(time.perf_counter() - t0)
    return out


def _measure(port: int, token: str, dsn: dict, paths=PATHS) -> dict:
    for _, path in paths:  # every statement planned and its pages read once
        _times(port, path, token, 1)
    me = _times(port, "/api/v1/auth/me", token, 30)
    scan = _scan(dsn)
    out = {"auth_me_p50_ms": ms(me, 50), "events_scan_p50_ms": ms(scan, 50)}
    for name, path in paths:
        t = _times(port, path, token)
        out[f"{name}_p50_ms"] = ms(t, 50)
        out[f"{name}_vs_auth_me"] = statistics.median(t) / statistics.median(me)
        out[f"{name}_vs_events_scan"] = statistics.median(t) / statistics.median(scan)
    return out


def main() -> dict:
    with bench_database() as b:
        token = role_token(b.cluster.url(), "bench-planner", "planner")
        with psycopg.connect(**b.dsn()) as conn:
            n = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
            events = conn.execute("SELECT count(*) FROM report_events").fetchone()[0]
        with server(b, env=QUIET) as port:
            demo = _measure(port, token, b.dsn())
        with psycopg.connect(**b.dsn(), autocommit=True) as conn:
            conn.execute(TENFOLD)
            n10 = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
            events10 = conn.execute("SELECT count(*) FROM report_events").fetchone()[0]
        with server(b, env=QUIET) as port:
            tenfold = _measure(port, token, b.dsn())
    out = {
        "reports": n,
        "transitions": events,
        "demo": demo,
        "reports_tenfold": n10,
        "transitions_tenfold": events10,
        "tenfold": tenfold,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "evaluation.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(r: dict) -> None:
    for label, key, n in (
        ("demo", "demo", r["reports"]),
        ("x10", "tenfold", r["reports_tenfold"]),
    ):
        p = r[key]
        print(
            f"{label} ({n:,} reports): GET /auth/me p50 {p['auth_me_p50_ms']:.1f} ms, "
            f"a scan of the transitions p50 {p['events_scan_p50_ms']:.1f} ms"
        )
        for name, _ in PATHS:
            if f"{name}_p50_ms" in p:
                print(
                    f"  {name:16s} p50 {p[name + '_p50_ms']:8.1f} ms = "
                    f"{p[name + '_vs_auth_me']:6.1f}x /auth/me = "
                    f"{p[name + '_vs_events_scan']:5.1f}x the transitions' scan"
                )


if __name__ == "__main__":
    _print(main())
