"""Emerging hot spots: Gi* per time slice and a Mann-Kendall trend per grid, labelled the way
ArcGIS's Emerging Hot Spot Analysis labels them.

Rules (hot side; the cold side mirrors them with cold spots). A slice makes a grid a hot spot
when its Gi* z-score is at least 1.645 (90 % confidence, two-sided), a cold spot at -1.645 or
below. The trend is Mann-Kendall on the grid's z-scores over time (Kendall's tau against time,
significant at p < 0.05). With n slices, "most" means at least 90 % of them.

- new: hot in the final slice only.
- consecutive: an unbroken run of at least two hot slices at the end, never hot before the run,
  hot in fewer than 90 % of slices.
- intensifying: hot in at least 90 % of slices including the final one, z rising.
- persistent: hot in at least 90 % of slices, no significant trend.
- diminishing: hot in at least 90 % of slices including the final one, z falling.
- sporadic: hot in the final slice, hot on and off before, fewer than 90 %, never cold.
- oscillating: hot in the final slice, a cold spot in some earlier slice, fewer than 90 % hot.
- historical: not hot in the final slice, hot in at least 90 % of the others.
- no_pattern: none of the above, on either side.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.stats import kendalltau
from sqlalchemy import Connection, text

from geo.analytics import stats_process
from geo.analytics.counts import layer_geojson
from geo.analytics.weights import StarWeights, weights
from geo.cache import Versions, cached
from geo.errors import InvalidInput
from geo.grids.layer import COMPREHENSIVE_OF, GridLayer, grid_layer
from geo.reports.queries import ReportFilter, where_clause

Z90 = 1.645
TREND_P = 0.05
MOST = 0.9
MAX_SLICES = 156
STEPS = {"day": 86_400, "week": 7 * 86_400}


def slice_count(since: datetime, until: datetime, step: str) -> int:
    """Return how many slices of `step` cover [since, until) (months: calendar months)."""
    if step == "month":
        months = (until.year - since.year) * 12 + until.month - since.month
        month_start = until.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return months + (1 if until > month_start else 0)
    return int(np.ceil((until - since).total_seconds() / STEPS[step]))


def _bucket_sql(step: str) -> str:
    if step == "month":
        return (
            "((date_part('year', r.reported_at AT TIME ZONE 'UTC') - :y0) * 12 "
            "+ date_part('month', r.reported_at AT TIME ZONE 'UTC') - :m0)::int"
        )
    return "floor(extract(epoch FROM r.reported_at - :since) / :step_s)::int"


def counts_by_slice(
    conn: Connection, f: ReportFilter, layer: GridLayer, step: str, n_slices: int
) -> np.ndarray:
    """Return report counts as a (slices, grids) matrix over the comprehensive grids."""
    if f.since is None:
        raise InvalidInput("since is required")  # pragma: no cover - checked by the caller
    where, params = where_clause(f)
    rows = conn.execute(
        text(
            f"""
            SELECT {COMPREHENSIVE_OF} AS code, {_bucket_sql(step)} AS t, count(*) AS n
            FROM reports r JOIN grids g ON g.code = r.grid_code
            WHERE {where} GROUP BY 1, 2
            """
        ),
        {**params, "step_s": STEPS.get(step, 0), "y0": f.since.year, "m0": f.since.month},
    ).all()
    out = np.zeros((n_slices, len(layer.codes)))
    for code, t, n in rows:
        if code in layer.index and 0 <= t < n_slices:
            out[t, layer.index[code]] += n
    return out


def z_scores(counts: np.ndarray, w: StarWeights) -> np.ndarray:
    """Return Gi* z-scores (analytic; binary weights, star) per slice and grid."""
    from esda import G_Local

    z = np.full(counts.shape, np.nan)
    for t, y in enumerate(counts):
        if not y.any():
            continue
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            g = G_Local(y, w.graph, transform="B", star=True, permutations=0)
        z[t] = g.Zs
    z[:, w.islands] = np.nan
    return z


def mann_kendall(series: np.ndarray) -> tuple[float, float, int]:
    """Return (tau, p, direction) of the Mann-Kendall trend test on a series."""
    ok = ~np.isnan(series)
    if ok.sum() < 3 or np.nanstd(series) == 0:
        return 0.0, 1.0, 0
    tau, p = kendalltau(np.arange(len(series))[ok], series[ok])
    if np.isnan(p):
        return 0.0, 1.0, 0
    direction = int(np.sign(tau)) if p < TREND_P else 0
    return float(tau), float(p), direction


def _side(sig: np.ndarray, opposite: np.ndarray, trend: int, prefix: str) -> str | None:
    n = len(sig)
    share = sig.sum() / n
    final = bool(sig[-1])
    if final and sig.sum() == 1:
        return f"new_{prefix}"
    if final:
        run = 0
        for v in sig[::-1]:
            if not v:
                break
            run += 1
        if run >= 2 and sig[: n - run].sum() == 0 and share < MOST:
            return f"consecutive_{prefix}"
        if share >= MOST:
            if trend > 0:
                return f"intensifying_{prefix}"
            if trend < 0:
                return f"diminishing_{prefix}"
            return f"persistent_{prefix}"
        if opposite.any():
            return f"oscillating_{prefix}"
        return f"sporadic_{prefix}"
    if sig[:-1].sum() >= MOST * (n - 1) and sig.any():
        return f"historical_{prefix}"
    return None


def classify(z: np.ndarray) -> tuple[str, float | None, float | None]:
    """Return (pattern, tau, p) for one grid's z-score series (rules in the module docstring)."""
    hot = np.nan_to_num(z, nan=0.0) >= Z90
    cold = np.nan_to_num(z, nan=0.0) <= -Z90
    # The trend only decides between intensifying, persistent and diminishing (90 % of the
    # slices significant); skipping it elsewhere saves a Kendall test per quiet grid.
    if max(hot.mean(), cold.mean()) >= MOST:
        tau, p, direction = mann_kendall(z)
    else:
        return (
            _side(hot, cold, 0, "hot") or _side(cold, hot, 0, "cold") or "no_pattern",
            None,
            None,
        )
    # The cold side reads the trend the other way: a cold spot "intensifies" as z falls.
    label = _side(hot, cold, direction, "hot") or _side(cold, hot, -direction, "cold")
    return label or "no_pattern", tau, p


def patterns(
    counts: np.ndarray, w: StarWeights
) -> tuple[np.ndarray, list[tuple[str, float | None, float | None]]]:
    """Return the z-scores per slice and grid, and each grid's (pattern, tau, p)."""
    z = z_scores(counts, w)
    return z, [classify(z[:, i]) for i in range(z.shape[1])]


@dataclass(frozen=True)
class EmergingSpec:
    """The time slicing."""

    step: str = "week"


def emerging_geojson(
    conn: Connection, f: ReportFilter, spec: EmergingSpec, v: Versions
) -> tuple[bytes, bool]:
    """Return each comprehensive grid's emerging hot spot pattern as GeoJSON bytes, cached."""
    since, until = f.since, f.until
    if since is None or until is None:
        raise InvalidInput("emerging hot spots need since and until (the window to slice)")
    n = slice_count(since, until, spec.step)
    if n < 3:
        raise InvalidInput(f"the window holds {n} {spec.step}(s): at least 3 slices are needed")
    if n > MAX_SLICES:
        raise InvalidInput(
            f"the window holds {n} {spec.step}s: at most {MAX_SLICES}; use a longer step"
        )

    def compute() -> bytes:
        layer = grid_layer(conn, v)
        counts = counts_by_slice(conn, f, layer, spec.step, n)
        # Up to 156 Gi* and a Kendall test per grid: ~0.5 s holding the GIL, so in the
        # statistics process, within the time budget.
        z, labels = stats_process.submit(patterns, counts, weights(layer))()
        props = []
        summary: dict[str, int] = {}
        for i, (code, name) in enumerate(zip(layer.codes, layer.names, strict=True)):
            label, tau, p = labels[i]
            summary[label] = summary.get(label, 0) + 1
            col = z[:, i]
            props.append(
                {
                    "code": code,
                    "name": name,
                    "pattern": label,
                    "count": int(counts[:, i].sum()),
                    "hot_slices": int((np.nan_to_num(col) >= Z90).sum()),
                    "cold_slices": int((np.nan_to_num(col) <= -Z90).sum()),
                    "trend_tau": None if tau is None else round(tau, 4),
                    "trend_p": None if p is None else round(p, 4),
                    "last_z": None if np.isnan(col[-1]) else round(float(col[-1]), 4),
                }
            )
        extra = {
            "boundary_version": v.boundary,
            "slices": n,
            "step": spec.step,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "patterns": dict(sorted(summary.items())),
            "rules": "see GET /docs: Getis-Ord Gi* per slice at 90 %, Mann-Kendall at 95 %",
        }
        return layer_geojson(layer, props, extra)

    return cached(("emerging", f, spec, v), compute)
