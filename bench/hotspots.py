"""Hotspot benchmark: Gi* with 999 permutations over the 4,880 demo grids, through the API.

`python -m bench.hotspots`. Cold means the result is not cached (the data version is moved
before each request), with the grid layer and weights already built for the boundary version
(they are built once per version, at start-up); cached is the same request again. The
baseline is esda called directly on the same counts and weights in the same run.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid

import numpy as np
import psycopg

from bench.common import (
    NEW_REPORT,
    RESULTS,
    bench_database,
    comprehensive_grids,
    http_get,
    ms,
    server,
    time_esda_gistar,
)

QUERY = "/api/v1/hotspots/gistar?theme=flood&permutations=999"


def main() -> dict:
    out: dict = {}
    with bench_database() as b, server(b, workers=1) as port:
        with psycopg.connect(**b.dsn(), autocommit=True) as conn:
            frame = comprehensive_grids(conn)
            time.sleep(3)  # let the server's warm-up build the layer and weights
            first, body, _ = http_get(port, QUERY, b.token())
            cold, cached = [], []
            for _ in range(7):
                # A new report, so the counts change: moving the data version alone would
                # find Gi* memoised by its counts.
                conn.execute(NEW_REPORT, (str(uuid.uuid4()),))
                dt, body, tag = http_get(port, QUERY, b.token())
                assert tag == "miss"
                cold.append(dt)
                dt, _, tag = http_get(port, QUERY, b.token())
                assert tag == "hit"
                cached.append(dt)
        counts = {
            f["properties"]["code"]: f["properties"]["count"] for f in json.loads(body)["features"]
        }
        y = np.array([counts[c] for c in frame["code"]], dtype=float)
        t_w, esda_t = time_esda_gistar(frame, y)
    out = {
        "grids": len(y),
        "reports": int(y.sum()),
        "api_first_ms": first * 1000,
        "api_cold_p50_ms": ms(cold, 50),
        "api_cached_p50_ms": ms(cached, 50),
        "esda_weights_ms": t_w * 1000,
        "esda_g_local_p50_ms": ms(esda_t, 50),
        "ratio_cold_to_esda": statistics.median(cold) / statistics.median(esda_t),
        "ratio_cold_to_esda_with_weights": statistics.median(cold)
        / (statistics.median(esda_t) + t_w),
        "response_kb": len(body) / 1000,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hotspots.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    r = main()
    print(
        f"Gi* 999 permutations over {r['grids']:,} grids ({r['reports']:,} flood reports), "
        f"{r['response_kb']:.0f} KB GeoJSON"
    )
    print(
        f"  API cold p50 {r['api_cold_p50_ms']:.0f} ms (first request {r['api_first_ms']:.0f} "
        f"ms), cached p50 {r['api_cached_p50_ms']:.1f} ms"
    )
    print(
        f"  esda G_Local p50 {r['esda_g_local_p50_ms']:.0f} ms (+ queen weights "
        f"{r['esda_weights_ms']:.0f} ms) -> cold/esda {r['ratio_cold_to_esda']:.2f}x, "
        f"cold/(esda+weights) {r['ratio_cold_to_esda_with_weights']:.2f}x"
    )
