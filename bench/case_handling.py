"""Case handling benchmark: the console's queue page, the department inbox, the report page
and a move, at the demo's volume and at ten times its reports.

`python -m bench.case_handling`. Each figure is a p50 over repeated requests to one
`riskgrid serve` process, with GET /api/v1/auth/me (a trivial logged-in route) timed in the
same run as the baseline. The issue's targets: queue page and inbox < 100 ms at the demo's
volume and < 300 ms at ten times; report page < 100 ms; a move < 5 ms.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time

import psycopg

from bench.common import RESULTS, bench_database, ms, role_token, server

GAS = "燃气公司"
ROUNDS = 40
WARM_UP = 3
# Nine copies of every demo report (new ids, same places, times and states): ten times the
# reports in one statement, histories left out (no page reads them in bulk).
TENFOLD = """
INSERT INTO reports (id, theme, category, severity, status, status_changed_at, due_at,
  description, geom, source_crs, district_code, grid_code, assignment_method,
  assignment_distance_m, department, resolution_level, campaign_code, reporter, reported_at,
  possible_duplicate_of, handler_id, supervised_at, supervised_by, supervision_note,
  rework_count, return_count)
SELECT gen_random_uuid(), theme, category, severity, status, status_changed_at, due_at,
  description, geom, source_crs, district_code, grid_code, assignment_method,
  assignment_distance_m, department, resolution_level, campaign_code, reporter, reported_at,
  NULL, handler_id, supervised_at, supervised_by, supervision_note, rework_count, return_count
FROM reports, generate_series(1, 9)
"""


def _times(port: int, method: str, paths: list[str], token: str, body=None) -> list[float]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    out = []
    for i, path in enumerate(paths):
        t0 = time.perf_counter()
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        answer = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {r.status} {answer[:300]!r}")
        if i >= WARM_UP:
            out.append(time.perf_counter() - t0)
    c.close()
    return out


def _pages(port: int, tokens: dict, some_report: str) -> dict:
    me = _times(port, "GET", ["/api/v1/auth/me"] * ROUNDS, tokens["dispatcher"])
    out = {"auth_me_p50_ms": ms(me, 50)}
    for name, path, who in (
        ("console_new", "/console?queue=new", "dispatcher"),
        ("console_overdue", "/console?queue=overdue", "dispatcher"),
        ("inbox_all", "/inbox", "gas"),
        ("inbox_unassigned", "/inbox?assigned=unassigned", "gas"),
        ("report_page", f"/console/reports/{some_report}", "dispatcher"),
        ("report_api", f"/api/v1/reports/{some_report}", "dispatcher"),
    ):
        t = _times(port, "GET", [path] * ROUNDS, tokens[who])
        out[f"{name}_p50_ms"] = ms(t, 50)
        out[f"{name}_ratio"] = statistics.median(t) / statistics.median(me)
    return out


def _moves(port: int, token: str, ids: list[str]) -> list[float]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    out = []
    for rid in ids:
        t0 = time.perf_counter()
        c.request("POST", f"/api/v1/reports/{rid}/transitions", '{"to": "accepted"}', headers)
        r = c.getresponse()
        answer = r.read()
        if r.status != 200:
            raise RuntimeError(f"accept {rid}: HTTP {r.status} {answer[:300]!r}")
        out.append(time.perf_counter() - t0)
    c.close()
    return out


def main() -> dict:
    with bench_database() as b:
        url = b.cluster.url()
        tokens = {
            "dispatcher": role_token(url, "bench-desk", "dispatcher"),
            "gas": role_token(url, "bench-gas", "department", GAS),
        }
        with psycopg.connect(**b.dsn()) as conn:
            reported = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM reports WHERE status = 'reported' ORDER BY id LIMIT %s",
                    (ROUNDS + WARM_UP,),
                )
            ]
            some = str(
                conn.execute(
                    "SELECT report_id FROM report_photos ORDER BY report_id LIMIT 1"
                ).fetchone()[0]
            )
            n = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        with server(b) as port:
            demo = _pages(port, tokens, some)
            moves = _moves(port, tokens["dispatcher"], reported)[WARM_UP:]
        with psycopg.connect(**b.dsn()) as conn:
            conn.execute(TENFOLD)
            conn.execute("ANALYZE reports")
            n10 = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        with server(b) as port:
            tenfold = _pages(port, tokens, some)
    out = {
        "reports": n,
        "demo": demo,
        "move_p50_ms": ms(moves, 50),
        "move_ratio": statistics.median(moves) / (demo["auth_me_p50_ms"] / 1000),
        "reports_tenfold": n10,
        "tenfold": tenfold,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "case_handling.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(r: dict) -> None:
    for label, key, n in (("demo", "demo", r["reports"]), ("x10", "tenfold", r["reports_tenfold"])):
        p = r[key]
        print(f"{label} ({n:,} reports), GET /auth/me p50 {p['auth_me_p50_ms']:.1f} ms:")
        for name in ("console_new", "console_overdue", "inbox_all", "inbox_unassigned",
                     "report_page", "report_api"):  # fmt: skip
            print(f"  {name:18s} p50 {p[name + '_p50_ms']:7.1f} ms  = {p[name + '_ratio']:5.1f}x")
    print(f"accept (a move) p50 {r['move_p50_ms']:.1f} ms = {r['move_ratio']:.1f}x /auth/me")


if __name__ == "__main__":
    _print(main())
