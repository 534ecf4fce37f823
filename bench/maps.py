"""Map benchmark: server time to build /maps/{theme}, page size as reports grow tenfold, and page
load to heat layer drawn in headless Chromium on loopback.

`python -m bench.maps`. Uncached builds are forced by moving the data version; the baseline
for the page size is the same page before the reports are multiplied.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pandas as pd
import psycopg

from bench.common import (
    NEW_REPORT,
    RESULTS,
    Bench,
    bench_database,
    comprehensive_grids,
    http_get,
    ms,
    server,
    time_esda_gistar,
)
from web.browser import launch

DRAWN = """() => [...document.querySelectorAll('canvas.leaflet-heatmap-layer')].some(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
  return false;
})"""


def _builds(b: Bench, port: int, theme: str, n: int = 5) -> dict:
    """Build times after a new report (every aggregate recomputed) and after a change that
    moves no count (a status change: Gi* and the dissolve are reused), then cached."""
    fresh, moved, hot, size = [], [], [], 0
    with psycopg.connect(**b.dsn(), autocommit=True) as conn:
        for _ in range(n):
            conn.execute(NEW_REPORT, (str(uuid.uuid4()),))
            dt, body, _ = http_get(port, f"/maps/{theme}", b.token())
            size = len(body)
            fresh.append(dt)
            conn.execute("SELECT nextval('reports_data_version')")
            moved.append(http_get(port, f"/maps/{theme}", b.token())[0])
            hot.append(http_get(port, f"/maps/{theme}", b.token())[0])
    return {
        "build_p50_ms": ms(fresh, 50),
        "build_no_count_change_p50_ms": ms(moved, 50),
        "cached_p50_ms": ms(hot, 50),
        "page_kb": size / 1000,
    }


def _multiply_reports(b: Bench, factor: int) -> int:
    """Load (factor - 1) more copies of every demo report, jittered by ~50 m."""
    from geo.db.engine import make_engine
    from geo.reports.bulk import load
    from geo.settings import ReportSettings, Settings

    with psycopg.connect(**b.dsn()) as conn:
        rows = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom), theme, category, reported_at, status, "
            "resolution_level, campaign_code FROM reports"
        ).fetchall()
    base = pd.DataFrame(
        rows,
        columns=[
            "lon",
            "lat",
            "theme",
            "category",
            "reported_at",
            "status",
            "resolution_level",
            "campaign_code",
        ],
    )
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(factor - 1):
        f = base.copy()
        f["lon"] += rng.normal(0, 0.0006, len(f))
        f["lat"] += rng.normal(0, 0.0004, len(f))
        f["id"] = [str(uuid.uuid4()) for _ in range(len(f))]
        frames.append(f)
    more = pd.concat(frames, ignore_index=True)
    engine = make_engine(Settings(), b.cluster.url())
    with engine.begin() as conn:
        inserted = load(conn, more, ReportSettings()).inserted
    engine.dispose()
    return inserted


def _esda_baseline(b: Bench) -> float:
    """The floor in the same run: esda's Gi* alone on the same grids and counts (ms)."""
    with psycopg.connect(**b.dsn()) as conn:
        frame = comprehensive_grids(conn)
        counts = dict(conn.execute("SELECT grid_code, count(*) FROM reports GROUP BY 1").fetchall())
    y = np.array([counts.get(c, 0) for c in frame["code"]], dtype=float)
    return ms(time_esda_gistar(frame, y)[1], 50)


def _browser_load(port: int, theme: str, token: str, n: int = 5) -> list[float]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies(
            [{"name": "riskgrid_session", "value": token, "url": f"http://127.0.0.1:{port}"}]
        )
        for _ in range(n):
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/maps/{theme}")
            page.wait_for_function(DRAWN, timeout=30_000, polling=20)
            out.append(time.perf_counter() - t0)
            page.close()
        browser.close()
    return out


def main() -> dict:
    out: dict = {}
    with bench_database() as b:
        with server(b, workers=1) as port:
            time.sleep(3)
            http_get(
                port, "/maps/all", b.token()
            )  # first build also loads the statistics libraries
            for theme in ("all", "flood"):
                out[theme] = _builds(b, port, theme)
            out["browser_load_to_heat_p50_ms"] = ms(_browser_load(port, "all", b.token()), 50)
            out["esda_gistar_p50_ms"] = _esda_baseline(b)
            out["ratio_build_to_esda"] = out["all"]["build_p50_ms"] / out["esda_gistar_p50_ms"]
            added = _multiply_reports(b, 10)
            out["all_x10"] = {"reports_added": added, **_builds(b, port, "all", n=3)}
            out["size_ratio_x10"] = out["all_x10"]["page_kb"] / out["all"]["page_kb"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "maps.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    r = main()
    for theme in ("all", "flood"):
        x = r[theme]
        print(
            f"/maps/{theme}: build p50 {x['build_p50_ms']:.0f} ms (no count changed: "
            f"{x['build_no_count_change_p50_ms']:.0f} ms), cached p50 "
            f"{x['cached_p50_ms']:.1f} ms, {x['page_kb']:.0f} KB"
        )
    x = r["all_x10"]
    print(
        f"/maps/all with {x['reports_added']:,} more reports: build p50 "
        f"{x['build_p50_ms']:.0f} ms, {x['page_kb']:.0f} KB (size x{r['size_ratio_x10']:.3f})"
    )
    print(
        f"esda Gi* alone (999 permutations, same grids): p50 {r['esda_gistar_p50_ms']:.0f} ms "
        f"-> /maps/all build / Gi* = {r['ratio_build_to_esda']:.2f}x"
    )
    print(
        f"page load to heat layer drawn (Chromium, loopback): p50 "
        f"{r['browser_load_to_heat_p50_ms']:.0f} ms"
    )
