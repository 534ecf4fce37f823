"""Quiet grids (漏报): comprehensive grids sending fewer reports than their residents would.

A grid nobody reports from looks safe on a hot-spot map (a Gi* cold spot, or nothing at all);
it may only be unwatched. Per grid i of stratum s (街道 or 乡镇, from its area code):
expected_i = rate_s × residents_i, rate_s = the stratum's reports / its residents over the
query's period and filters, and p_i = P(X ≤ observed_i) for X ~ Poisson(expected_i). The
Benjamini-Hochberg q-values run over the grids expecting at least `min_expected` (a grid
expecting 0.4 reports says nothing by sending none, and could never be significant), and a
grid is "quiet: check" (核查漏报) where q < `max_q`. docs/quiet_grids.md has the model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import orjson
from scipy.stats import false_discovery_control, poisson
from sqlalchemy import Connection, text

from geo.analytics.counts import grid_counts
from geo.cache import RESULTS, Versions, cached
from geo.errors import InvalidInput
from geo.geojson import feature_collection
from geo.grids.layer import GridLayer, grid_layer
from geo.identity.principal import Principal
from geo.reports.queries import ReportFilter
from geo.settings import MapSettings
from geo.vocabulary import Role

STREET, TOWNSHIP, OTHER, CITY = "street", "township", "other", "city"

# The comprehensive grid a household counts for: its own, or the one beneath an exclusive grid
# (geo.risk.households counts them so too; geo/risk sits above this layer).
_HOUSEHOLDS_SQL = """
    SELECT CASE WHEN g.kind = 'exclusive' THEN (
             SELECT c.code FROM grids c WHERE c.kind = 'comprehensive'
             AND ST_Covers(c.geom, h.geom) ORDER BY c.code LIMIT 1) ELSE g.code END AS code,
           count(*) AS households
    FROM households h JOIN grids g ON g.code = h.grid_code
    GROUP BY 1"""


@dataclass(frozen=True)
class QuietSpec:
    """The test's settings: the FDR level, the least expected count tested, the strata, and the
    residents per household where a grid has no population (None: the register's mean)."""

    max_q: float = 0.05
    min_expected: float = 3.0
    by_stratum: bool = True
    household_size: float | None = None

    @classmethod
    def of(cls, maps: MapSettings) -> QuietSpec:
        """Return the spec the map settings give."""
        return cls(
            maps.quiet_max_q,
            maps.quiet_min_expected,
            maps.quiet_by_stratum,
            maps.quiet_household_size,
        )


@dataclass(frozen=True)
class HouseholdRight:
    """Which grids' household counts a caller sees exactly (the rule of the flood ranking):
    an admin's all, a coordinator's districts (all when unbound), a worker's grids."""

    everywhere: bool = False
    districts: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()

    @classmethod
    def of(cls, who: Principal) -> HouseholdRight:
        """Return the right of `who`."""
        if who.role == Role.ADMIN or (who.role == Role.COORDINATOR and not who.districts):
            return cls(everywhere=True)
        if who.role == Role.COORDINATOR:
            return cls(districts=who.districts)
        if who.role == Role.WORKER:
            return cls(grids=who.grids)
        return cls()

    def mask(self, codes: list[str], districts: list[str | None]) -> np.ndarray:
        """Return, per grid, whether its household count is shown exactly."""
        if self.everywhere:
            return np.ones(len(codes), dtype=bool)
        return np.array(
            [c in self.grids or d in self.districts for c, d in zip(codes, districts, strict=True)],
            dtype=bool,
        )


NO_HOUSEHOLDS = HouseholdRight()  # the theme maps': no grid's few households shown exactly


def stratum(code: str) -> str:
    """Return a grid's district-type stratum from its 统计用区划代码 prefix: the street digit
    (7th) 0 is a 街道 (`street`), 1 a 镇 and 2-3 a 乡 (`township`); other codes `other`."""
    if len(code) < 9 or not code[:9].isdigit():
        return OTHER
    return STREET if code[6] == "0" else TOWNSHIP if code[6] in "123" else OTHER


def bh_q_values(p: np.ndarray) -> np.ndarray:
    """Return the Benjamini-Hochberg q-values of `p` (scipy's false_discovery_control)."""
    p = np.asarray(p, dtype=float)
    return false_discovery_control(p, method="bh") if len(p) else p


@dataclass(frozen=True)
class QuietTest:
    """The test over a set of grids: expected counts, p and q (NaN where not tested), flags,
    and each stratum's rate."""

    expected: np.ndarray
    p: np.ndarray
    q: np.ndarray
    quiet: np.ndarray
    rates: dict[str, dict]


def quiet_test(
    observed: np.ndarray, residents: np.ndarray, strata: list[str], spec: QuietSpec
) -> QuietTest:
    """Return the Poisson lower-tail test of each grid's count against its stratum's rate."""
    observed = np.asarray(observed, dtype=float)
    residents = np.asarray(residents, dtype=float)
    groups = np.array(strata if spec.by_stratum else [CITY] * len(strata), dtype=object)
    expected = np.zeros(len(observed))
    rates: dict[str, dict] = {}
    for s in sorted(set(groups)):
        members = groups == s
        reports, people = observed[members].sum(), residents[members].sum()
        rate = reports / people if people > 0 else 0.0
        expected[members] = rate * residents[members]
        rates[s] = {
            "grids": int(members.sum()),
            "reports": int(reports),
            "residents": round(float(people), 1),
            "rate_per_1000": float(f"{rate * 1000:.6g}"),
        }
    # Poisson(0) puts all its mass on 0: a grid expecting nothing is never in the low tail.
    p = np.where(expected > 0, poisson.cdf(observed, np.maximum(expected, 1e-300)), 1.0)
    tested = expected >= max(spec.min_expected, 1e-12)
    q = np.full(len(observed), np.nan)
    q[tested] = bh_q_values(p[tested])
    return QuietTest(expected, p, q, tested & (q < spec.max_q), rates)


@dataclass(frozen=True)
class GridPeople:
    """Per comprehensive grid (layer order): district, population (NaN where none is stored)
    and households in the register; the register's mean household size and data version."""

    version: int
    districts: list[str | None]
    population: np.ndarray
    households: np.ndarray
    mean_household_size: float | None


def households_version(conn: Connection) -> int:
    """Return the households' data version (it moves with every write to the register)."""
    return int(conn.execute(text("SELECT last_value FROM households_data_version")).scalar_one())


def grid_people(conn: Connection, layer: GridLayer, v: Versions, version: int) -> GridPeople:
    """Return the grids' residents' sources, read once per boundary and households version."""
    key = ("quiet-people", *v.boundary_key, version)
    hit = RESULTS.get(key)
    if hit is not None:
        return hit
    rows = conn.execute(
        text("SELECT code, district_code, population FROM grids WHERE kind = 'comprehensive'")
    ).all()
    districts: list[str | None] = [None] * len(layer.codes)
    population = np.full(len(layer.codes), np.nan)
    for code, district, pop in rows:
        if code in layer.index:
            districts[layer.index[code]] = district
            population[layer.index[code]] = np.nan if pop is None else pop
    households = np.zeros(len(layer.codes))
    size = None
    if np.isnan(population).any():  # the register is read only where it is needed
        for code, n in conn.execute(text(_HOUSEHOLDS_SQL)).all():
            if code in layer.index:
                households[layer.index[code]] = n
        n, members = conn.execute(text("SELECT count(*), sum(members) FROM households")).one()
        size = float(members) / n if n else None
    people = GridPeople(version, districts, population, households, size)
    RESULTS.put(key, people)
    return people


@dataclass(frozen=True)
class Residents:
    """Residents per grid, whether each came from households, and which are withheld."""

    count: np.ndarray
    from_households: np.ndarray
    withheld: np.ndarray
    household_size: float | None
    household_size_from: str


def residents(people: GridPeople, spec: QuietSpec, exact: np.ndarray, k: int) -> Residents:
    """Return each grid's residents: its population, else households × mean household size.

    Where that rests on 1 to k-1 households a caller may not see exactly, k households stand
    in (as the flood ranking does), so that nothing shown gives the few back.
    """
    size = spec.household_size or people.mean_household_size
    from_hh = np.isnan(people.population)
    homes = people.households.copy()
    withheld = from_hh & ~exact & (homes > 0) & (homes < k)
    homes[withheld] = k
    count = np.where(from_hh, homes * (size or 0.0), people.population)
    source = "setting" if spec.household_size else "register"
    return Residents(count, from_hh, withheld, size, source)


@dataclass(frozen=True)
class QuietResult:
    """The test for one query: the grids tested (layer positions), counts, residents, test."""

    layer: GridLayer
    grids: np.ndarray
    observed: np.ndarray
    strata: list[str]
    residents: Residents
    test: QuietTest
    spec: QuietSpec
    f: ReportFilter

    @property
    def flagged(self) -> list[int]:
        """Return the layer positions of the grids flagged quiet."""
        return [int(i) for i, q in zip(self.grids, self.test.quiet, strict=True) if q]


def check_filter(f: ReportFilter) -> None:
    """Refuse the filters that pick reports by place: the rate is of the grids analysed."""
    if f.grid is not None or f.bbox is not None:
        raise InvalidInput(
            "quiet grids are found by comparing the grids of an area with each other: "
            "narrow it with district=, not grid= or bbox="
        )


def analysed(layer: GridLayer, people: GridPeople, f: ReportFilter) -> np.ndarray:
    """Return the layer positions of the grids the query's district and scope cover."""
    keep = np.ones(len(layer.codes), dtype=bool)
    districts = np.array(people.districts, dtype=object)
    if f.district is not None:
        keep &= districts == f.district
    if f.scope.districts is not None:
        keep &= np.isin(districts, list(f.scope.districts))
    if f.scope.grids is not None:
        keep &= np.isin(np.array(layer.codes, dtype=object), list(f.scope.grids))
    return np.flatnonzero(keep)


def quiet_result(
    conn: Connection,
    f: ReportFilter,
    spec: QuietSpec,
    v: Versions,
    k: int,
    right: HouseholdRight = NO_HOUSEHOLDS,
    counts: np.ndarray | None = None,
) -> QuietResult:
    """Return the quiet-grid test over the grids the filter's district and scope cover.

    `counts` (per layer grid, as `grid_counts` gives them for `f`) saves reading them again.
    """
    check_filter(f)
    layer = grid_layer(conn, v)
    people = grid_people(conn, layer, v, households_version(conn))
    if counts is None:
        counts, _ = grid_counts(conn, f, layer)
    exact = right.mask(layer.codes, people.districts)
    # Keyed by the counts themselves: other themes' reports move the data version only.
    digest = hashlib.blake2b(counts.tobytes() + exact.tobytes(), digest_size=16).digest()
    key = ("quiet-result", f, spec, v.boundary_key, people.version, k, digest)
    hit = RESULTS.get(key)
    if hit is not None:
        return hit
    idx = analysed(layer, people, f)
    res = residents(people, spec, exact, k)
    picked = Residents(
        res.count[idx],
        res.from_households[idx],
        res.withheld[idx],
        res.household_size,
        res.household_size_from,
    )
    strata = [stratum(layer.codes[i]) for i in idx]
    test = quiet_test(counts[idx], picked.count, strata, spec)
    result = QuietResult(layer, idx, counts[idx], strata, picked, test, spec, f)
    RESULTS.put(key, result)
    return result


def _sig(v: float, digits: int = 4) -> float | None:
    """Return `v` to `digits` significant digits (p-values run to 1e-30), None when NaN."""
    return None if not np.isfinite(v) else float(f"{v:.{digits}g}")


def rows(r: QuietResult) -> list[dict]:
    """Return one row per grid analysed: grid, observed, expected, p, q, quiet, their basis."""
    out = []
    t, res = r.test, r.residents
    for j, i in enumerate(r.grids):
        hidden = bool(res.withheld[j])
        out.append(
            {
                "grid": r.layer.codes[i],
                "name": r.layer.names[i],
                "stratum": r.strata[j],
                "residents": None if hidden else round(float(res.count[j]), 1),
                "residents_from": "households" if res.from_households[j] else "population",
                "observed": int(r.observed[j]),
                "expected": None if hidden else round(float(t.expected[j]), 3),
                "p": None if hidden else _sig(t.p[j]),
                "q": None if hidden else _sig(t.q[j]),
                "quiet": bool(t.quiet[j]),
                "suppressed": hidden,
            }
        )
    return out


def method(r: QuietResult) -> dict:
    """Return how the test was made: the model, the rates, the thresholds."""
    s, f, size = r.spec, r.f, r.residents.household_size
    strata = "street (街道) / township (镇, 乡) by the grid code's street digit"
    return {
        "model": "expected = rate of the grid's stratum x its residents; residents = the grid's "
        "population, else households in the register x mean household size",
        "test": "Poisson lower tail: p = P(X <= observed | expected)",
        "fdr": "Benjamini-Hochberg over the grids expecting at least min_expected",
        "strata": strata if s.by_stratum else "one rate for all the grids analysed",
        "rates": r.test.rates,
        "max_q": s.max_q,
        "min_expected": s.min_expected,
        "household_size": None if size is None else round(size, 3),
        "household_size_from": r.residents.household_size_from,
        "since": f.since.isoformat() if f.since else None,
        "until": f.until.isoformat() if f.until else None,
    }


def summary(r: QuietResult) -> dict:
    """Return the counts of grids analysed, tested and flagged."""
    return {
        "grids": len(r.grids),
        "tested": int(np.isfinite(r.test.q).sum()),
        "quiet": int(r.test.quiet.sum()),
        "reports": int(r.observed.sum()),
    }


def quiet_answer(
    conn: Connection,
    f: ReportFilter,
    spec: QuietSpec,
    v: Versions,
    k: int,
    right: HouseholdRight,
    geojson: bool = False,
) -> tuple[bytes, bool]:
    """Return the per-grid answer as JSON (`{grids, method, summary}`) or GeoJSON bytes,
    cached per query, versions (the households' too) and household right."""

    def compute() -> bytes:
        r = quiet_result(conn, f, spec, v, k, right)
        props = rows(r)
        extra = {"method": method(r), "summary": summary(r)}
        if not geojson:
            return orjson.dumps({"grids": props, **extra})
        feats = (
            (p["grid"], r.layer.geometry_json[i], p) for p, i in zip(props, r.grids, strict=True)
        )
        return feature_collection(feats, extra)

    key = ("quiet-answer", geojson, f, spec, v, households_version(conn), k, right)
    return cached(key, compute)
