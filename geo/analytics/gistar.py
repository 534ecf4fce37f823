"""Getis-Ord Gi* hot and cold spots over the comprehensive grids (esda).

Gi* runs over the comprehensive grids, which tile the city; a report inside an exclusive grid
counts for the comprehensive grid beneath it too (`counts.grid_counts`). Results are cached per
(query, boundary version, data version), and the statistic itself per set of counts.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection

from geo.analytics import stats_process
from geo.analytics.counts import (
    base_properties,
    exclusive_counts,
    grid_counts,
    layer_geojson,
    rounded,
)
from geo.analytics.weights import StarWeights, weights
from geo.cache import RESULTS, Versions, cached
from geo.grids.layer import GridLayer, grid_layer
from geo.reports.queries import ReportFilter

# ArcGIS Gi_Bin: ±3, ±2, ±1 at 99, 95 and 90 % confidence; 0 not significant. ArcGIS tests
# two-sided; esda's pseudo p-value is one-sided in the direction observed, so 90 % confidence
# (two-sided 0.10) is a one-sided p of 0.05, and so on.
CLASSES = {
    3: "hot_99",
    2: "hot_95",
    1: "hot_90",
    0: "not_significant",
    -1: "cold_90",
    -2: "cold_95",
    -3: "cold_99",
}
LEVELS = ((0.005, 3), (0.025, 2), (0.05, 1))


@dataclass(frozen=True)
class GiStar:
    """Gi* per grid: z-score, pseudo p-value, ArcGIS class; None where a grid has no neighbour."""

    z: np.ndarray
    p: np.ndarray
    bins: np.ndarray
    islands: list[int]
    fdr_threshold: float | None


def gi_star(
    counts: np.ndarray,
    w: StarWeights,
    permutations: int = 999,
    seed: int = 12345,
    fdr: bool = False,
) -> GiStar:
    """Return Getis-Ord Gi* (esda G_Local, star=True, binary weights) for per-grid counts.

    z is esda's analytic z-score; p comes from esda's conditional randomisation (the call
    G_Local makes, with the simulations kept) read with ties counted (`pseudo_p`).
    """
    from esda import G_Local
    from esda import fdr as fdr_threshold
    from esda.crand import crand

    # G_Local's own statistic for Gi* simulations: private in esda, hence esda's pinned minor.
    from esda.getisord import _g_local_star_crand

    y = np.asarray(counts, dtype=float)
    islands = w.islands
    if not y.any():
        nan = np.full(len(y), np.nan)
        return GiStar(nan, nan, np.zeros(len(y), dtype=int), islands, None)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        g = G_Local(y, w.graph, transform="B", star=True, permutations=0)
        # As G_Local(permutations=...) calls it, minus the summaries of the simulations it
        # would then compute (25 ms) that nothing here reads. On G_Local's copy of the weights
        # (`g.w`): crand zeroes the diagonal of the matrix it is given, in place.
        _, simulated = crand(
            y,
            g.w,
            g.Gs,
            permutations,
            True,
            1,
            _g_local_star_crand,
            scaling=y.sum(),
            seed=seed,
            island_weight=0,
            alternative="directed",
        )
    z = np.asarray(g.Zs, dtype=float)
    p = pseudo_p(np.asarray(g.Gs, dtype=float), np.asarray(simulated, dtype=float), z)
    for i in islands:
        z[i], p[i] = np.nan, np.nan
    threshold = None
    levels: tuple[tuple[float, int], ...] = LEVELS
    if fdr:
        valid = p[~np.isnan(p)]
        # FDR (Benjamini-Hochberg, as ArcGIS applies it) per confidence level.
        levels = tuple((float(fdr_threshold(valid, a)), b) for a, b in LEVELS)
        threshold = levels[1][0]
    bins = np.zeros(len(y), dtype=int)
    for alpha, b in reversed(levels):  # strongest level last, so it wins
        sig = (p <= alpha) & ~np.isnan(p)
        bins[sig] = np.sign(z[sig]).astype(int) * b
    return GiStar(z, p, bins, islands, threshold)


def pseudo_p(observed: np.ndarray, simulated: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Return the permutation pseudo p-value, one-sided in the direction of `z`, ties counted.

    p = (1 + #simulations at least as extreme as observed) / (1 + #simulations). esda's own
    `p_sim` (its "directed" alternative) takes the smaller of #(sim >= obs) and #(sim < obs),
    so a grid whose every simulation ties with it (no report anywhere around, for a sparse
    theme) got p = 0.001: 1,440 empty rural grids were "99 % cold spots" for stability.
    """
    # Observed and simulated statistics are summed in different orders: equal within rounding.
    tol = 1e-9 * np.maximum(np.abs(observed), 1e-300)
    up = z >= 0
    extreme = np.empty(len(observed))
    extreme[up] = (simulated[up] >= (observed - tol)[up, None]).sum(axis=1)
    extreme[~up] = (simulated[~up] <= (observed + tol)[~up, None]).sum(axis=1)
    return (extreme + 1.0) / (simulated.shape[1] + 1.0)


@dataclass(frozen=True)
class GiSpec:
    """How to run Gi*: weights, permutations, seed, FDR."""

    weights: str = "queen"
    distance_m: float | None = None
    permutations: int = 999
    seed: int = 12345
    fdr: bool = False


@dataclass(frozen=True)
class GiResult:
    """Gi* for one query: the grid layer, per-grid counts, the statistics, exclusive counts."""

    layer: GridLayer
    counts: np.ndarray
    gi: GiStar
    exclusive: dict[str, int]

    def classes(self) -> list[str]:
        """Return the class name of every grid, in layer order."""
        islands = set(self.gi.islands)
        return ["island" if i in islands else CLASSES[int(b)] for i, b in enumerate(self.gi.bins)]


def gistar_result(conn: Connection, f: ReportFilter, spec: GiSpec, v: Versions) -> GiResult:
    """Return Gi* for a query, computed once per (query, boundary version, data version) in
    the statistics process, within its time budget."""
    return gistar_start(conn, f, spec, v)()


def gistar_start(
    conn: Connection,
    f: ReportFilter,
    spec: GiSpec,
    v: Versions,
    run: Callable[..., Callable[[], GiStar]] = stats_process.submit,
) -> Callable[[], GiResult]:
    """Start Gi* for a query and return a function that waits for it (the result is cached).

    The counts are read now on `conn`; the statistics run through `run(fn, *args)` (the
    statistics process's `submit`), so that a caller can go on querying while esda works.
    """
    key = ("gistar-result", f, spec, v)
    hit = RESULTS.get(key)
    if hit is not None:
        return lambda: hit
    layer = grid_layer(conn, v)
    counts, exclusive = grid_counts(conn, f, layer)
    w = weights(layer, spec.weights, spec.distance_m)
    # Keyed by the counts themselves too: status changes and other themes' reports move the
    # data version without changing a single count.
    digest = hashlib.blake2b(counts.tobytes(), digest_size=16).digest()
    memo = ("gi-star", *v.boundary_key, spec, digest)
    known = RESULTS.get(memo)
    args = (counts, w, spec.permutations, spec.seed, spec.fdr)
    wait: Callable[[], GiStar] = (lambda: known) if known is not None else run(gi_star, *args)

    def finish() -> GiResult:
        gi = wait()
        RESULTS.put(memo, gi)
        result = GiResult(layer, counts, gi, exclusive)
        RESULTS.put(key, result)
        return result

    return finish


def gistar_geojson(
    conn: Connection, f: ReportFilter, spec: GiSpec, v: Versions
) -> tuple[bytes, bool]:
    """Return Gi* per comprehensive grid (count, z, p, class) as GeoJSON bytes, cached."""

    def compute() -> bytes:
        r = gistar_result(conn, f, spec, v)
        props = base_properties(r.layer, r.counts)
        for p, name, z, pv, b in zip(props, r.classes(), r.gi.z, r.gi.p, r.gi.bins, strict=True):
            p.update(z=rounded(z), p=rounded(pv), gi_bin=int(b), **{"class": name})
        extra = {
            "boundary_version": v.boundary,
            "total": int(r.counts.sum()),
            "method": _method(spec, r.gi),
            "classes": {c: int((r.gi.bins == b).sum()) for b, c in CLASSES.items()},
            "islands": len(r.gi.islands),
            "exclusive": exclusive_counts(r.exclusive),
        }
        return layer_geojson(r.layer, props, extra)

    return cached(("gistar", f, spec, v), compute)


def _method(spec: GiSpec, g: GiStar) -> dict:
    return {
        "statistic": "Getis-Ord Gi*",
        "weights": spec.weights,
        "distance_m": spec.distance_m,
        "transform": "binary",
        "permutations": spec.permutations,
        "seed": spec.seed,
        "fdr": spec.fdr,
        "fdr_threshold_95": g.fdr_threshold,
    }
