"""Quiet grids (漏报): a planted grid that sends nothing is flagged, a small one is not, grids
at the rate are not (FDR), the rates are per stratum, and residents come from households where
a grid has no population."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson
from sqlalchemy import Engine, text

from boundaries.importer import ImportOptions, import_file
from geo.analytics.quiet import (
    HouseholdRight,
    QuietSpec,
    bh_q_values,
    quiet_result,
    quiet_test,
    stratum,
)
from geo.cache import versions
from geo.errors import InvalidInput
from geo.reports.queries import ReportFilter
from geo.risk import households
from geo.settings import ImportSettings
from tests.factories import BLOCK_SIZE, grid_frame, point_m, put_reports, square_m, write

# Two 6 x 6 blocks of 500 m grids side by side: 街道 grids of district 230602 (columns 0-5)
# and 镇 grids of district 230603 (columns 6-11), reporting at different rates.
N = 6
STREET_PREFIX, TOWN_PREFIX = "230602001001", "230603101001"
STREET_RATE, TOWN_RATE = 0.01, 0.003  # reports per resident over the period
QUIET = (1, 1)  # a populous street grid that sends nothing
SMALL = (4, 4)  # a street grid of 100 residents that sends nothing: 1 expected
FROM_HOMES = (2, 4)  # a street grid without a population: 12 households of 3
FEW_HOMES = (8, 4)  # a town grid without a population: 3 households, fewer than k = 5


def code(i: int, j: int) -> str:
    """Return the code of the scenario's grid in column i, row j."""
    prefix, col = (STREET_PREFIX, i) if i < N else (TOWN_PREFIX, i - N)
    return f"{prefix}{j * N + col + 1:03d}"


def quiet_scenario(db: Engine, tmp: Path, seed: int = 0) -> dict[str, float]:
    """Load the two blocks with populations, Poisson reports at the stratum's rate (flood),
    the planted quiet and small grids, and households; return each grid's population."""
    rng = np.random.default_rng(seed)
    rows, population = [], {}
    for i in range(2 * N):
        for j in range(N):
            c = code(i, j)
            population[c] = float(rng.integers(1500, 3000))
            rows.append(
                {
                    "code": c,
                    "name": f"网格{i}-{j}",
                    "kind": "comprehensive",
                    "community_code": c[:12],
                    "district_code": c[:6],
                    "population": int(population[c]),
                    "geometry": square_m(i * BLOCK_SIZE, j * BLOCK_SIZE, BLOCK_SIZE),
                }
            )
    population[code(*QUIET)], population[code(*SMALL)] = 6000.0, 100.0
    for r in rows:
        r["population"] = int(population[r["code"]])
    import_file(db, write(grid_frame(rows), tmp / "g.geojson"), ImportOptions(), ImportSettings())
    cells = {
        (i, j): int(rng.poisson((STREET_RATE if i < N else TOWN_RATE) * population[code(i, j)]))
        for i in range(2 * N)
        for j in range(N)
    }
    cells[QUIET] = cells[SMALL] = 0
    put_reports(db, cells, rng)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE grids SET population = NULL WHERE code = ANY(:c)"),
            {"c": [code(*FROM_HOMES), code(*FEW_HOMES)]},
        )
    _put_households(db, {FROM_HOMES: 12, FEW_HOMES: 3})
    return population


def _put_households(db: Engine, homes: dict[tuple[int, int], int], members: int = 3) -> None:
    spots = [
        point_m((i + 0.2 + 0.05 * n) * BLOCK_SIZE, (j + 0.5) * BLOCK_SIZE)
        for (i, j), k in homes.items()
        for n in range(k)
    ]
    frame = pd.DataFrame(
        {
            "id": [str(uuid.uuid4()) for _ in spots],
            "code": [f"HHQ{n:04d}" for n in range(len(spots))],
            "head_name": "住户",
            "phone": None,
            "address": None,
            "members": members,
            "over_60": 0,
            "oldest_age": 40,
            "living_alone": False,
            "mobility_needs": False,
            "contact_worker": None,
            "lon": [p[0] for p in spots],
            "lat": [p[1] for p in spots],
        }
    )
    with db.begin() as conn:
        households.load(conn, frame, 150.0)


def test_bh_q_values_match_a_hand_computation():
    # Sorted: 0.005 0.01 0.03 0.04 0.045; p x 5 / rank: 0.025 0.025 0.05 0.05 0.045; each the
    # least of itself and those ranked after it: 0.025 0.025 0.045 0.045 0.045.
    q = bh_q_values(np.array([0.01, 0.04, 0.03, 0.005, 0.045]))
    assert q == pytest.approx([0.025, 0.045, 0.045, 0.025, 0.045])
    assert len(bh_q_values(np.array([]))) == 0


def test_strata_come_from_the_street_digit_of_the_code():
    assert stratum("230602001001001") == "street"  # 0: 街道
    assert [stratum(f"230623{d}01001001") for d in "123"] == ["township"] * 3  # 镇, 乡
    assert stratum("230623901001001") == "other"
    assert stratum("G-7") == "other"


def test_expected_counts_add_up_to_the_reports_of_each_stratum():
    obs = np.array([5, 0, 7, 1, 2])
    res = np.array([500.0, 400, 700, 300, 0])
    t = quiet_test(obs, res, ["street", "street", "street", "township", "township"], QuietSpec())
    assert t.expected[:3].sum() == pytest.approx(12) and t.expected[3:].sum() == pytest.approx(3)
    assert t.expected[1] == pytest.approx(12 / 1600 * 400)
    assert t.p[1] == pytest.approx(poisson.cdf(0, t.expected[1]))
    assert t.p[4] == 1.0 and np.isnan(t.q[4])  # no residents: nothing expected, not tested
    assert t.rates["street"] == {
        "grids": 3,
        "reports": 12,
        "residents": 1600.0,
        "rate_per_1000": 7.5,
    }


def test_planted_quiet_grid_is_flagged_and_the_others_are_not(db, tmp_path):
    population = quiet_scenario(db, tmp_path)
    with db.connect() as conn:
        v = versions(conn)
        f = ReportFilter(theme="flood")
        r = quiet_result(conn, f, QuietSpec(), v, 5, HouseholdRight(everywhere=True))
        flat = quiet_result(conn, f, QuietSpec(by_stratum=False), v, 5)
        town = quiet_result(conn, ReportFilter(theme="flood", district="230603"), QuietSpec(), v, 5)
        observed = dict(
            conn.execute(text("SELECT grid_code, count(*) FROM reports GROUP BY 1")).all()
        )
        with pytest.raises(InvalidInput, match="district="):
            quiet_result(conn, ReportFilter(grid=code(0, 0)), QuietSpec(), v, 5)
    at = {r.layer.codes[i]: j for j, i in enumerate(r.grids)}
    t = r.test

    def row(cell):
        return at[code(*cell)]

    # The rate of each stratum, recomputed from the raw rows: reports / residents.
    population[code(*FROM_HOMES)] = 12 * 3.0  # the register's mean: 3 residents a household
    population[code(*FEW_HOMES)] = 3 * 3.0  # an admin sees the few households exactly
    for name, cols in (("street", range(N)), ("township", range(N, 2 * N))):
        cells = [code(i, j) for i in cols for j in range(N)]
        rate = sum(observed.get(c, 0) for c in cells) / sum(population[c] for c in cells)
        for c in cells:
            assert t.expected[at[c]] == pytest.approx(rate * population[c])
        assert r.test.rates[name]["rate_per_1000"] == pytest.approx(rate * 1000, rel=1e-5)
    assert r.residents.from_households[row(FROM_HOMES)] and r.residents.household_size == 3.0

    # The populous grid sending nothing is flagged, far past chance.
    assert t.expected[row(QUIET)] > 50 and t.q[row(QUIET)] < 1e-10
    assert r.flagged == [r.layer.index[code(*QUIET)]]
    # The small one sends nothing too, but expects about one report: not tested, not flagged.
    assert t.expected[row(SMALL)] < 3 and np.isnan(t.q[row(SMALL)]) and not t.quiet[row(SMALL)]
    # Every other grid reports at its rate: chance lows do not pass the FDR.
    others = [j for j in range(len(r.grids)) if j not in (row(QUIET), row(SMALL))]
    tested = [j for j in others if np.isfinite(t.q[j])]
    assert len(tested) >= 60 and min(t.q[j] for j in tested) >= 0.05
    assert min(t.p[j] for j in tested) < 0.2  # some did come in low, by chance

    # One city rate instead of the strata reads the 镇 grids' lower rate as quiet.
    town_flagged = [i for i in flat.flagged if r.layer.codes[i].startswith(TOWN_PREFIX)]
    assert len(town_flagged) >= 3

    # district= analyses that district's grids against their own rate.
    assert len(town.grids) == N * N and set(town.strata) == {"township"}
    assert town.test.rates["township"]["grids"] == N * N
