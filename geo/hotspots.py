"""Where reports concentrate: per-grid counts, Getis-Ord Gi* hot and cold spots, caching.

Gi* runs over the comprehensive grids, which tile the city; a report inside an exclusive grid
counts for the comprehensive grid beneath it too. Statistics come from esda/libpysal; the
weights are built once per boundary version and kept in the process, and results are cached
per (query, boundary version, data version), the data version moving with every write to
reports (a sequence bumped by a trigger, so writers never wait on each other).
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.errors import InvalidInput
from geo.report_queries import ReportFilter, where_clause

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
MAX_DISTANCE_BAND_M = 50_000.0
# The comprehensive grid a report counts for (on `reports r JOIN grids g ON g.code =
# r.grid_code`): its own grid, or for an exclusive grid the comprehensive grid beneath.
COMPREHENSIVE_OF = """CASE WHEN g.kind = 'exclusive' THEN (
    SELECT c.code FROM grids c WHERE c.kind = 'comprehensive' AND ST_Covers(c.geom, r.geom)
    ORDER BY c.code LIMIT 1) ELSE g.code END"""


@dataclass(frozen=True)
class StarWeights:
    """Binary Gi* weights (self included) and the grids with no neighbour at all."""

    graph: Any
    islands: list[int]


@dataclass
class GridLayer:
    """The comprehensive grids of one boundary version, in a fixed order, with their weights."""

    version: int
    codes: list[str]
    names: list[str]
    area_km2: np.ndarray
    population: np.ndarray
    geometry_json: list[str]
    frame: gpd.GeoDataFrame
    weights: dict[tuple, Any] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    coverages: dict[float, np.ndarray] = field(default_factory=dict)


class _Cache:
    """A small thread-safe LRU for computed results."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.data: OrderedDict[tuple, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: tuple, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


_LAYERS: dict[tuple, GridLayer] = {}
_LAYER_LOCK = threading.Lock()
RESULTS = _Cache()


@dataclass(frozen=True)
class Versions:
    """What a cached result depends on: which database, which grids, which reports."""

    database: str
    boundary: int
    boundary_at: str
    data: int


def versions(conn: Connection) -> Versions:
    """Return the current versions (the boundary one identified by id and time, so a restored
    or emptied database never reuses another's cache)."""
    row = conn.execute(
        text(
            "SELECT current_database(), COALESCE(v.id, 0), COALESCE(v.imported_at::text, ''), "
            "(SELECT last_value FROM reports_data_version) "
            "FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, imported_at FROM boundary_versions "
            "WHERE layer = 'grids' ORDER BY id DESC LIMIT 1) v ON TRUE"
        )
    ).one()
    return Versions(str(row[0]), int(row[1]), str(row[2]), int(row[3]))


def _layer_key(v: Versions) -> tuple:
    return (v.database, v.boundary, v.boundary_at)


def grid_layer(conn: Connection, version: Versions) -> GridLayer:
    """Return the comprehensive grids of `version`, loading them once per process."""
    with _LAYER_LOCK:
        layer = _LAYERS.get(_layer_key(version))
        if layer is not None:
            return layer
        rows = conn.execute(
            text(
                "SELECT code, name, area_m2, COALESCE(population, 0) AS population, "
                "ST_AsGeoJSON(geom, 6) AS gj, ST_AsBinary(geom) AS wkb "
                "FROM grids WHERE kind = 'comprehensive' ORDER BY code"
            )
        ).all()
        if not rows:
            raise InvalidInput("no comprehensive grids are loaded: import boundaries first")
        frame = gpd.GeoDataFrame(
            {"code": [r.code for r in rows]},
            geometry=shapely.from_wkb([bytes(r.wkb) for r in rows]),
            crs=4326,
        )
        layer = GridLayer(
            version=version.boundary,
            codes=[r.code for r in rows],
            names=[r.name for r in rows],
            area_km2=np.array([r.area_m2 / 1e6 for r in rows]),
            population=np.array([r.population for r in rows], dtype=float),
            geometry_json=[r.gj for r in rows],
            frame=frame,
        )
        layer.index = {c: i for i, c in enumerate(layer.codes)}
        if len(_LAYERS) > 4:  # a few databases (tests, a demo) at most
            _LAYERS.clear()
        _LAYERS[_layer_key(version)] = layer
        return layer


def weights(layer: GridLayer, kind: str = "queen", distance_m: float | None = None) -> StarWeights:
    """Return binary Gi* weights (self included) for the layer: queen contiguity or distance."""
    from libpysal import weights as lw
    from libpysal.graph import Graph

    key = (kind, distance_m)
    cached_w = layer.weights.get(key)
    if cached_w is not None:
        return cached_w
    with warnings.catch_warnings():
        # Islands and disconnected parts are expected (a lake, a district apart) and handled.
        warnings.simplefilter("ignore")
        if kind == "queen":
            w = lw.Queen.from_dataframe(layer.frame, use_index=False, silence_warnings=True)
        else:
            if distance_m is None or not 0 < distance_m <= MAX_DISTANCE_BAND_M:
                raise InvalidInput(
                    f"distance_m must be within 0..{MAX_DISTANCE_BAND_M:g} for distance weights"
                )
            metric = layer.frame.geometry.to_crs(layer.frame.geometry.estimate_utm_crs())
            pts = np.column_stack([metric.centroid.x, metric.centroid.y])
            w = lw.DistanceBand(pts, threshold=distance_m, binary=True, silence_warnings=True)
    # Gi* counts each grid as its own neighbour. The diagonal is filled once here, and the
    # weights kept as a libpysal Graph: esda rebuilt a W's sparse matrix on every call
    # (16 ms against 3 ms a Gi*, which adds up over the time slices of emerging hot spots).
    star = Graph.from_W(lw.fill_diagonal(w, 1)).transform("B")
    layer.weights[key] = StarWeights(star, list(w.islands))
    return layer.weights[key]


def coverage(layer: GridLayer, tolerance_deg: float) -> np.ndarray:
    """Return the layer's grids as an exact coverage, simplified with shared edges kept shared.

    Grids of two districts meet on borders noded differently; once cleaned into an exact
    coverage, any set of grids dissolves with `shapely.coverage_union_all` in about a
    millisecond (a snap-rounded `union_all` of 3,700 grids took 0.45 s). Once per layer.
    """
    with _LAYER_LOCK:
        cov = layer.coverages.get(tolerance_deg)
        if cov is None:
            geoms = np.asarray(layer.frame.geometry.values)
            cov = shapely.coverage_simplify(shapely.coverage_clean(geoms), tolerance_deg)
            layer.coverages[tolerance_deg] = cov
        return cov


def grid_counts(conn: Connection, f: ReportFilter, layer: GridLayer) -> tuple[np.ndarray, dict]:
    """Return report counts per comprehensive grid (layer order) and per exclusive grid."""
    where, params = where_clause(f)
    # Counted per grid code first (a hash aggregate), and the grid beneath looked up only for
    # the few reports in exclusive grids: grouping every report by the looked-up code made
    # PostgreSQL sort them all (29 ms against 15 for the demo).
    rows = conn.execute(
        text(
            f"""
            SELECT g.kind, g.code AS comprehensive, g.code, x.n
            FROM (SELECT r.grid_code, count(*) AS n FROM reports r WHERE {where} GROUP BY 1) x
            JOIN grids g ON g.code = x.grid_code AND g.kind = 'comprehensive'
            UNION ALL
            SELECT g.kind, {COMPREHENSIVE_OF} AS comprehensive, g.code, count(*) AS n
            FROM reports r JOIN grids g ON g.code = r.grid_code AND g.kind = 'exclusive'
            WHERE {where}
            GROUP BY 1, 2, 3
            """
        ),
        params,
    ).all()
    counts = np.zeros(len(layer.codes))
    exclusive: dict[str, int] = {}
    for kind, comp, code, n in rows:
        if comp is not None and comp in layer.index:
            counts[layer.index[comp]] += n
        if kind == "exclusive":
            exclusive[code] = exclusive.get(code, 0) + int(n)
    return counts, exclusive


@dataclass(frozen=True)
class GiStar:
    """Gi* per grid: z-score, pseudo p-value, ArcGIS class; None where a grid has no neighbour."""

    z: np.ndarray
    p: np.ndarray
    bins: np.ndarray
    islands: list[int]
    fdr_threshold: float | None


def gi_star(
    counts: np.ndarray, w: Any, permutations: int = 999, seed: int = 12345, fdr: bool = False
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


def cached(key: tuple, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """Return (result, was_cached) for `key`, computing and storing it when missing."""
    hit = RESULTS.get(key)
    if hit is not None:
        return hit, True
    value = compute()
    RESULTS.put(key, value)
    return value, False


def _round(v: float, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def feature_collection(layer: GridLayer, props: list[dict], extra: dict) -> bytes:
    """Return GeoJSON bytes: the layer's grids (cached geometry JSON) with `props` and `extra`."""
    import orjson

    feats = [
        b'{"type":"Feature","id":'
        + orjson.dumps(code)
        + b',"geometry":'
        + gj.encode()
        + b',"properties":'
        + orjson.dumps(p)
        + b"}"
        for code, gj, p in zip(layer.codes, layer.geometry_json, props, strict=True)
    ]
    head = orjson.dumps({"type": "FeatureCollection", **extra})[:-1]
    return head + b',"features":[' + b",".join(feats) + b"]}"


def _base_props(layer: GridLayer, counts: np.ndarray) -> list[dict]:
    density = counts / np.where(layer.area_km2 > 0, layer.area_km2, np.nan)
    rate = counts / np.where(layer.population > 0, layer.population, np.nan) * 1000
    return [
        {
            "code": c,
            "name": n,
            "count": int(k),
            "density_km2": _round(d, 3),
            "rate_per_1000": _round(r, 3),
        }
        for c, n, k, d, r in zip(layer.codes, layer.names, counts, density, rate, strict=True)
    ]


def grids_geojson(conn: Connection, f: ReportFilter) -> tuple[bytes, bool]:
    """Return per-grid counts, density per km² and rate per 1,000 residents as GeoJSON bytes."""
    v = versions(conn)

    def compute() -> bytes:
        layer = grid_layer(conn, v)
        counts, exclusive = grid_counts(conn, f, layer)
        extra = {
            "boundary_version": v.boundary,
            "total": int(counts.sum()),
            "exclusive": [{"code": k, "count": v} for k, v in sorted(exclusive.items())],
        }
        return feature_collection(layer, _base_props(layer, counts), extra)

    return cached(("grids", f, v), compute)


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


def gistar_result(
    conn: Connection, f: ReportFilter, spec: GiSpec, v: Versions | None = None
) -> GiResult:
    """Return Gi* for a query, computed once per (query, boundary version, data version)."""
    return gistar_start(conn, f, spec, v or versions(conn))()


def gistar_start(
    conn: Connection,
    f: ReportFilter,
    spec: GiSpec,
    v: Versions,
    run: Callable[..., Callable[[], GiStar]] | None = None,
) -> Callable[[], GiResult]:
    """Start Gi* for a query and return a function that waits for it (the result is cached).

    The counts are read now on `conn`; the statistics run through `run(fn, *args)` (the
    statistics process's `submit`), so that a caller can go on querying while esda works, or at
    once when `run` is None.
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
    memo = ("gi-star", v.database, v.boundary, v.boundary_at, spec, digest)
    known = RESULTS.get(memo)
    args = (counts, w, spec.permutations, spec.seed, spec.fdr)
    if known is not None:
        wait: Callable[[], GiStar] = lambda: known  # noqa: E731
    elif run is not None:
        wait = run(gi_star, *args)
    else:
        now = gi_star(*args)
        wait = lambda: now  # noqa: E731

    def finish() -> GiResult:
        gi = wait()
        RESULTS.put(memo, gi)
        result = GiResult(layer, counts, gi, exclusive)
        RESULTS.put(key, result)
        return result

    return finish


def gistar_geojson(conn: Connection, f: ReportFilter, spec: GiSpec) -> tuple[bytes, bool]:
    """Return Gi* per comprehensive grid (count, z, p, class) as GeoJSON bytes, cached."""
    v = versions(conn)

    def compute() -> bytes:
        r = gistar_result(conn, f, spec, v)
        layer, counts, g, exclusive = r.layer, r.counts, r.gi, r.exclusive
        props = _base_props(layer, counts)
        for i, p in enumerate(props):
            island = i in g.islands
            p.update(
                z=_round(g.z[i]),
                p=_round(g.p[i]),
                gi_bin=int(g.bins[i]),
                **{"class": "island" if island else CLASSES[int(g.bins[i])]},
            )
        summary = {c: int((g.bins == b).sum()) for b, c in CLASSES.items()}
        extra = {
            "boundary_version": v.boundary,
            "total": int(counts.sum()),
            "method": {
                "statistic": "Getis-Ord Gi*",
                "weights": spec.weights,
                "distance_m": spec.distance_m,
                "transform": "binary",
                "permutations": spec.permutations,
                "seed": spec.seed,
                "fdr": spec.fdr,
                "fdr_threshold_95": g.fdr_threshold,
            },
            "classes": summary,
            "islands": len(g.islands),
            "exclusive": [{"code": k, "count": v} for k, v in sorted(exclusive.items())],
        }
        return feature_collection(layer, props, extra)

    key = ("gistar", f, spec, v)
    return cached(key, compute)
